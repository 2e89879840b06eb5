"""How a run shows its progress: every display is a ``synthesize`` callback (``StepInfo`` in).

- ``Bar``: a tqdm bar with the loss, on a terminal (the command) or in a notebook;
- ``Progress``: the notebook's bar with a live preview of the image;
- ``LogLines``: a line every tenth of the budget, for a log file where no bar is drawn;
- ``Snapshots``: the image every N evaluations, the frames of a progress animation.

The interactive panel draws its own widgets (``notebook/view.py``) from the same ``StepInfo``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ..core.images import save_image, to_pil
from ..optim.record import StepInfo


class Bar:
    """A tqdm bar labelled ``description``, drawn only when ``enabled``.

    ``terminal=True`` draws on stderr with a plain-text bar (the commands); otherwise
    ``tqdm.auto`` picks a notebook widget when one can be shown. Called with a ``StepInfo``
    (synthesis), it shows the evaluation count and the best loss so far, never a line search's
    trial loss (which can be far above it and would look like divergence); loops that count other
    steps (generator training) call ``update`` with their step's loss.
    """

    def __init__(self, description: str = "", enabled: bool = True, *, terminal: bool = False,
                 unit: str = "it") -> None:
        self.description, self.enabled, self.terminal, self.unit = description, enabled, terminal, unit
        self.bar: Any = None
        self.widget: Any = None  # the notebook output that holds the widget, replaced when the bar closes

    def __call__(self, info: StepInfo) -> None:
        self.update(info.step, info.num_steps, info.best_loss, label="best loss")

    def update(self, step: int, total: int, loss: float, *, label: str = "loss") -> None:
        """Show step ``step`` (1-based) of ``total`` with ``loss`` after ``label``."""
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = self._open(total)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix_str(f"{label}={loss:.4g}", refresh=False)

    def _open(self, total: int) -> Any:
        if not self.terminal:
            from tqdm.auto import tqdm
            from tqdm.notebook import tqdm as notebook_tqdm

            if not issubclass(tqdm, notebook_tqdm):
                return tqdm(total=total, desc=self.description, leave=False, unit=self.unit)
            from IPython.display import display

            bar = tqdm(total=total, desc=self.description, leave=False, unit=self.unit, display=False)
            self.widget = display(bar.container, display_id=True)
            return bar
        from tqdm import tqdm

        try:
            sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except OSError:
            sized = False
        # A terminal that reports no size (a bare pseudo-terminal) would hide the bar.
        return tqdm(total=total, desc=self.description, leave=False, file=sys.stderr, unit=self.unit,
                    dynamic_ncols=sized, ncols=None if sized else 80, nrows=None if sized else 20)

    def close(self) -> None:
        """Close the bar. A notebook widget's output becomes the bar's last line as text: a saved
        notebook shows that, not the text the widget was created with (a bar at 0%)."""
        if self.bar is None:
            return
        last = str(self.bar)
        self.bar.close()
        self.bar = None
        if self.widget is not None:
            from IPython.display import Pretty

            self.widget.update(Pretty(last))
            self.widget = None


class Progress(Bar):
    """The notebook's display: the bar, and a preview every ``preview_every`` evaluations.

    The preview replaces itself in place (one image in the notebook, not one per update) and
    is only shown inside IPython; elsewhere only the bar is drawn. At the last evaluation both
    are removed (the caller shows the final image).

    Args:
        description: text in front of the bar.
        preview_every: evaluations between preview refreshes (0 disables the preview).
        preview_width: width of the preview in pixels.
    """

    def __init__(self, description: str = "", preview_every: int = 50, preview_width: int = 256) -> None:
        super().__init__(description)
        self.preview_every, self.preview_width = preview_every, preview_width
        self.handle: Any = None

    def __call__(self, info: StepInfo) -> None:
        super().__call__(info)
        if self.preview_every and (info.step % self.preview_every == 0 or info.step == info.num_steps):
            self._preview(info)
        if info.step >= info.num_steps:
            self.close()

    def _preview(self, info: StepInfo) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        image = to_pil(info.image)
        image = image.resize((self.preview_width, max(1, round(image.height * self.preview_width / image.width))))
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)

    def close(self) -> None:
        """Close the bar and remove the preview."""
        super().close()
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(""))
            self.handle = None


class LogLines:
    """``label: evaluation N of T, best loss L, S s`` on stderr every tenth of the budget (the
    lowest loss so far, as the bar shows it)."""

    def __init__(self, label: str) -> None:
        self.label, self.next_step, self.start = label, 1, time.perf_counter()

    def __call__(self, info: StepInfo) -> None:
        if info.step >= self.next_step or info.step == info.num_steps:
            print(f"{self.label}: evaluation {info.step} of {info.num_steps}, best loss {info.best_loss:.4g}, "
                  f"{time.perf_counter() - self.start:.0f} s", file=sys.stderr, flush=True)
            self.next_step = info.step + max(1, info.num_steps // 10)


class Snapshots:
    """Every ``every`` evaluations, the current image as ``folder/STEM-00050.png`` (``--save-every``).

    Frames are extras: when one cannot be written (a full disk, a folder removed) the frames stop,
    with one notice on stderr prefixed ``prog``, and the run goes on to its result.
    """

    def __init__(self, folder: Path, stem: str, every: int, prog: str = "neural-style") -> None:
        self.folder, self.stem, self.every, self.prog = folder, stem, every, prog
        self.failed = False

    def __call__(self, info: StepInfo) -> None:
        if self.failed or info.step % self.every:
            return
        path = self.folder / f"{self.stem}-{info.step:05d}.png"
        try:
            save_image(info.image.detach().float().cpu(), path, {"step": info.step, "loss": info.loss},
                       overwrite=True)
        except OSError as error:
            self.failed = True
            print(f"{self.prog}: note: frames stopped at evaluation {info.step}: cannot write {path} "
                  f"({error.strerror or error}); the run goes on and its result will still be written.",
                  file=sys.stderr, flush=True)

"""An interactive panel for the notebook (ipywidgets): pick images, set weights, run, stop, save.

A run takes seconds to minutes, so nothing runs when a slider moves: Run starts the job in a
background thread (the kernel stays responsive, so Stop works), and the ``synthesize`` callback
refreshes a progress bar, a preview and a loss curve every few evaluations and returns True once
Stop was pressed; the best image so far is kept. The panel loads its network itself (once per
kernel) unless it is given one, so its cell runs on its own, and ``show_panel`` stops the run of
the panel it showed before, so re-running the cell never leaves a run going. The Command tab
gives the ``neural-style`` line that renders the same settings, at a larger size if asked.
``StylePanel`` works without a browser, which is how it is tested.

    >>> from neural_style.panel import show_panel
    >>> panel = show_panel("images", "results")   # in a notebook cell
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from torch import Tensor

from ...core.devices import resolve_device
from ...net.loading import load_backbone
from ...net.vgg import VGGFeatures, check_backbone
from ...optim.record import StepInfo
from ...synthesis.run import SynthesisResult
from .form import CONTROLS_WIDTH, PREVIOUS, PanelForm
from .jobs import JobSettings, command_line, free_path, run_settings, saved_fields, saved_params, slug
from .view import front_end_connected, loss_curve_svg, preview_png, status_html

USER_STOP = "stopped by the user"  # why a run ended by the Stop button ended, in its PNG's metadata
_networks: dict[tuple[str, str], VGGFeatures] = {}
_networks_lock = threading.Lock()
_shown: list[StylePanel] = []


def shared_network(backbone: str = "auto", device: str = "auto") -> VGGFeatures:
    """``load_backbone(backbone, device=device)``, loaded once per process and then reused."""
    key = (backbone, str(resolve_device(device)))
    with _networks_lock:
        if key not in _networks:
            _networks[key] = load_backbone(backbone, device=key[1])
        return _networks[key]


class StylePanel(PanelForm):
    """The panel: its controls (``PanelForm``), the output column, and the run in its thread.

    Args:
        net: the backbone every run uses; None loads ``backbone`` on ``device`` at the first run
            (``shared_network``).
        images_dir: folder whose images are offered as content, style and start image.
        results_dir: where Save writes; uploads are kept in its ``uploads`` folder.
        backbone, device: what to load when ``net`` is None.
        preview_every: evaluations between preview refreshes.
        preview_width: width of the preview in pixels (also a menu in the Run tab).
    """

    def __init__(self, net: VGGFeatures | None = None, images_dir: str | Path = "images",
                 results_dir: str | Path = "results", *, backbone: str = "auto", device: str = "auto",
                 preview_every: int = 10, preview_width: int = 384) -> None:
        import ipywidgets as w

        if net is not None:  # None: the panel loads ``backbone`` on its first run
            check_backbone(net, "net")
        super().__init__(net, images_dir, results_dir, backbone=backbone, preview_width=preview_width)
        self.device, self.preview_every = device, preview_every
        self.result: SynthesisResult | None = None
        self.job: JobSettings | None = None
        self.error = ""
        self.thread: threading.Thread | None = None
        self.losses: list[float] = []
        self.shown: Tensor | None = None
        self._stop = threading.Event()
        self._output_controls(w)
        self.widget = self._layout(w)
        self._connect_run()

    def _output_controls(self, w: Any) -> None:
        self.run_button = w.Button(description="Run", button_style="success", icon="play",
                                   layout=w.Layout(width="90px"))
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                                    layout=w.Layout(width="90px"))
        self.save_button = w.Button(description="Save PNG", icon="save", disabled=True, layout=w.Layout(width="110px"))
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="100%"))
        self.preview = w.Image(format="png", layout=w.Layout(display="none", max_width="100%", height="auto"))
        self.curve = w.HTML("", layout=w.Layout(width="100%"))

    def _layout(self, w: Any) -> Any:
        """Two columns that stay side by side: the controls' tabs (fixed width) and the output,
        which shrinks (the preview with it) rather than wrapping below the controls. The buttons,
        Save's file name, the progress, the status and the loss curve come first, so that they stay
        on a laptop's screen above the preview."""
        buttons = w.HBox([self.run_button, self.stop_button, self.save_button, self.save_name],
                         layout=w.Layout(width="100%"))
        output = w.VBox([buttons, self.progress, self.status, self.curve, self.preview],
                        layout=w.Layout(flex="1 1 0%", min_width="0", overflow="hidden"))
        controls = w.Box([self.tabs], layout=w.Layout(flex=f"0 0 {CONTROLS_WIDTH}px"))
        return w.HBox([controls, output], layout=w.Layout(width="100%", align_items="flex-start",
                                                          grid_gap="16px"))

    def _connect_run(self) -> None:
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.preview_width.observe(lambda _: self._show(self.shown), names="value")

    # The run.
    def start(self) -> None:
        """What Run does: start the job the widgets describe in a background thread."""
        if self.running:
            return
        self.job, self.result, self.error, self.losses = self.settings(), None, "", []
        self._stop.clear()
        self.progress.value, self.progress.max = 0, self.job.options["num_steps"]
        self.progress.bar_style = ""
        self._set_running(True)
        self.status.value = status_html("loading images ...")
        self.thread = threading.Thread(target=self._work, args=(self.job,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """What Stop does: end the run at the next evaluation, keeping the best image so far."""
        self._stop.set()
        if self.running:
            self.status.value = status_html("stopping ...")

    def close(self, timeout: float = 30.0) -> None:
        """Stop the run, wait for its thread (up to ``timeout`` s) and close the widgets."""
        self.stop()
        self.wait(timeout)
        self.widget.close()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run ends (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _work(self, job: JobSettings) -> None:
        try:
            if self.net is None:
                self.status.value = status_html(f"loading the network ({self.backbone}, once per kernel) ...")
                self.net = shared_network(self.backbone, self.device)
                self.refresh_command()
            self.result = run_settings(self.net, job, self._callback)
        except Exception as error:  # shown in the panel: a background thread has nowhere else to report
            self.error = f"{type(error).__name__}: {error}"
            self.status.value = status_html(self.error, error=True)
            self.progress.bar_style = "danger"
        else:
            self._finished(self.result)
        finally:
            self._set_running(False)

    def _finished(self, result: SynthesisResult) -> None:
        self.previous = result.image
        if PREVIOUS not in [value for _, value in self.init.options]:
            self.init.options = [*self.init.options, ("the previous result", PREVIOUS)]
        self._show(result.image)
        self.losses = [entry["total"] for entry in result.history]
        self.curve.value = loss_curve_svg(self.losses)
        ended = "done" if result.stop.kind in ("budget", "converged") else "stopped"
        why = f"; {result.stopped}" if result.stopped and result.stopped != USER_STOP else ""
        self.status.value = status_html(f"{ended}: {len(result.history)} evaluations in {result.seconds:.1f} s, "
                                        f"best loss {result.best_loss:.4g} (evaluation {result.best_step}){why}")
        self.progress.bar_style = "success" if ended == "done" else "warning"

    def _callback(self, info: StepInfo) -> str:
        """Refresh the display; after Stop, the sentence that ends the run (its recorded reason)."""
        self.progress.max, self.progress.value = info.num_steps, info.step
        self.losses.append(info.loss)
        if info.step == 1 or info.step % self.preview_every == 0:
            self._show(info.image)
            self.curve.value = loss_curve_svg(self.losses)
            self.status.value = status_html(f"evaluation {info.step} / {info.num_steps}, "
                                            f"best loss {info.best_loss:.4g}")
        return USER_STOP if self._stop.is_set() else ""

    def _show(self, image: Tensor | None) -> None:
        """Put ``image`` in the preview at the chosen width (the preview stays hidden until then)."""
        if image is None:
            return
        self.shown = image.detach().to("cpu", copy=True)
        self.preview.value = preview_png(self.shown, self.preview_width.value)
        self.preview.layout.width, self.preview.layout.display = f"{self.preview_width.value}px", None

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        self.save_button.disabled = running or self.result is None

    # Saving.
    def _save_clicked(self) -> None:
        try:
            self.save()
        except (OSError, ValueError) as error:
            self.status.value = status_html(f"could not save: {error}", error=True)

    def save(self, name: str | None = None) -> Path:
        """What Save does: write the result as PNG with its parameters, the equivalent command, and
        for a stopped run the evaluations made; never overwrites a file."""
        if self.result is None or self.job is None:
            raise ValueError("Nothing to save yet: press Run first.")
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = free_path(self.results_dir, slug(name), ".png") if name else self.save_path(self.job)
        backbone = self.net.info if self.net is not None else self.backbone
        command = command_line(self.job, path, backbone)[0]
        result = dataclasses.replace(self.result, params=saved_params(self.result))
        result.save(str(path), name=path.stem, size_px=self.job.size, **saved_fields(self.result, self.job, command))
        self.status.value = status_html(f"saved {path}")
        self.refresh_command()  # the next Save, and so the command's -o, takes the next free name
        return path


def show_panel(images_dir: str | Path = "images", results_dir: str | Path = "results",
               net: VGGFeatures | None = None, **kwargs: Any) -> StylePanel | None:
    """Show a panel in the notebook: what the notebook's cell calls.

    A panel shown before by this function is stopped and closed first (re-running the cell
    never leaves an old run going). In a head-less run (no front-end: papermill, the tests)
    nothing is built: a note is printed and None returned. ``kwargs`` go to ``StylePanel``.
    """
    while _shown:
        _shown.pop().close()
    if not front_end_connected():
        print("No notebook front-end is connected (head-less run): the interactive panel is skipped. "
              "Open the notebook in JupyterLab or Jupyter Notebook to use it.")
        return None
    from IPython.display import display

    panel = StylePanel(net, images_dir, results_dir, **kwargs)
    _shown.append(panel)
    display(panel.widget)
    return panel

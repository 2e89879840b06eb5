"""An interactive panel for the notebook (ipywidgets): pick images, set weights, run, stop, save.

A run takes seconds to minutes, so nothing runs when a slider moves: the Run button starts
``run_job`` in a background thread (the kernel stays responsive, so Stop works), and the
``synthesize`` callback refreshes a progress bar and a preview every few evaluations and returns
True once Stop was pressed; the best image so far is kept. ``run_job`` and ``StylePanel`` work
without a browser, which is how they are tested.

    >>> from neural_style.panel import style_panel
    >>> style_panel(net, "images", "results")   # last expression of a notebook cell
"""

from __future__ import annotations

import inspect
import io
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import Tensor

from .backbones import VGGFeatures
from .cli import literal_choices
from .images import load_image, to_pil
from .statistics import STATISTICS
from .synthesis import STYLE_LAYERS, StepInfo, SynthesisResult, synthesize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
PANEL_ENV = "NEURAL_STYLE_PANEL"
# Keywords of synthesize offered as a menu (Literal values) or a switch when synthesize has them.
CHOICE_OPTIONS = {"preserve_colour": "preserve colour", "precision": "precision", "scales": "scales"}


@dataclass(frozen=True)
class Upload:
    """An image file uploaded through the panel: its name and bytes."""

    name: str
    data: bytes = field(repr=False)


ImageSource = Path | Upload


@dataclass
class JobSettings:
    """Everything one run needs; ``options`` are keywords of ``synthesize``.

    Attributes:
        styles: one or more style images.
        content: the content image; None synthesises a texture.
        size: long side in pixels every image is loaded at.
        options: e.g. ``content_weight``, ``style_layers``, ``layer_weights``, ``statistic``,
            ``num_steps``, ``seed``.
    """

    styles: Sequence[ImageSource]
    content: ImageSource | None = None
    size: int = 256
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Names of the inputs, for the PNG metadata."""
        return {"content_file": None if self.content is None else _source_name(self.content),
                "style_files": [_source_name(s) for s in self.styles]}


def _source_name(source: ImageSource) -> str:
    return f"upload:{source.name}" if isinstance(source, Upload) else str(source)


def load_source(source: ImageSource, size: int) -> Tensor:
    """(1, 3, H, W) in [0, 1] from a file or an upload (decoded by ``load_image`` either way)."""
    if isinstance(source, Path):
        return load_image(source, size)
    fd, tmp = tempfile.mkstemp(suffix=Path(source.name).suffix or ".img")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(source.data)
        return load_image(tmp, size)
    finally:
        os.unlink(tmp)


def run_job(net: VGGFeatures, settings: JobSettings,
            callback: Callable[[StepInfo], bool | None] | None = None) -> SynthesisResult:
    """Load the images of ``settings`` and run ``synthesize``; what the Run button calls.

    ``callback`` returning True stops the run; the result then holds the best image so far.
    """
    if not settings.styles:
        raise ValueError("Pick at least one style image.")
    styles = [load_source(s, settings.size) for s in settings.styles]
    content = None if settings.content is None else load_source(settings.content, settings.size)
    return synthesize(net, style=styles, content=content, callback=callback, **settings.options)


def front_end_connected() -> bool:
    """Whether widgets shown now would reach a live front-end (JupyterLab, Notebook, VS Code).

    False in a head-less run (papermill, nbclient, nbconvert --execute, a plain script). The
    environment variable ``NEURAL_STYLE_PANEL=1`` (or ``0``) overrides the guess. Otherwise the
    kernel must run under IPython and either have been started by a Jupyter server for a
    notebook session (``JPY_SESSION_NAME``, set by jupyter_server and VS Code, not by
    papermill) or have a widget front-end attached (ipywidgets' control channel is open).
    """
    forced = os.environ.get(PANEL_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    if os.environ.get("JPY_SESSION_NAME"):
        return True
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    return getattr(Widget, "_control_comm", None) is not None


def _png(image: Tensor, width: int) -> bytes:
    pil = to_pil(image)
    pil = pil.resize((width, max(1, round(pil.height * width / pil.width))))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(text).stem).strip("_") or "image"


class StylePanel:
    """The widgets, their state, and the run in its background thread.

    Args:
        net: the backbone every run uses.
        images_dir: folder whose images are offered as content and style.
        results_dir: where Save writes.
        preview_every: evaluations between preview refreshes.
        preview_width: width of the preview in pixels.
    """

    def __init__(self, net: VGGFeatures, images_dir: str | Path = "images", results_dir: str | Path = "results",
                 *, preview_every: int = 10, preview_width: int = 320) -> None:
        import ipywidgets as w

        self.net, self.results_dir = net, Path(results_dir)
        self.preview_every, self.preview_width = preview_every, preview_width
        self.result: SynthesisResult | None = None
        self.job: JobSettings | None = None
        self.error: str = ""
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        files = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        parameters = inspect.signature(synthesize).parameters
        wide = {"description_width": "120px"}
        box = w.Layout(width="380px")

        by_name = {p.name: p for p in files}
        first_content = by_name.get("chelsea.png", files[0] if files else None)
        first_style = by_name.get("great_wave.jpg", files[-1] if files else None)
        self.content = w.Dropdown(options=[("none: texture", None)] + [(p.name, p) for p in files],
                                  value=first_content, description="content", style=wide, layout=box)
        self.styles = w.SelectMultiple(options=[(p.name, p) for p in files],
                                       value=() if first_style is None else (first_style,), rows=6,
                                       description="style(s)", style=wide, layout=box)
        upload = w.Layout(width="256px", margin="0 0 4px 124px")
        self.content_upload = w.FileUpload(accept="image/*", multiple=False, description="upload a content image",
                                           layout=upload)
        self.style_upload = w.FileUpload(accept="image/*", multiple=True, description="upload style images",
                                         layout=upload)
        self.content_upload.observe(self._on_content_upload, names="value")
        self.style_upload.observe(self._on_style_upload, names="value")

        log = dict(base=10, style=wide, layout=box, readout_format=".1e", continuous_update=False)
        self.content_weight = w.FloatLogSlider(value=1.0, min=-3, max=3, description="content weight α", **log)
        self.style_weight = w.FloatLogSlider(value=1e3, min=0, max=6, description="style weight β", **log)
        self.tv_on = w.Checkbox(value=False, description="total variation", indent=False, layout=w.Layout(width="130px"))
        self.tv_weight = w.FloatLogSlider(value=1e-4, min=-8, max=0, description="TV weight γ", **log)
        self.layer_weights = {layer: w.FloatSlider(value=1 / len(STYLE_LAYERS), min=0, max=1, step=0.05,
                                                   description=f"w {layer}", style=wide, layout=box,
                                                   continuous_update=False)
                              for layer in STYLE_LAYERS}
        self.statistic = w.Dropdown(options=list(STATISTICS), value="gram", description="statistic", style=wide,
                                    layout=box)
        self.steps = w.IntSlider(value=100, min=10, max=1000, step=10, description="evaluations",
                                 style=wide, layout=box, continuous_update=False)
        self.size = w.IntSlider(value=192, min=64, max=1024, step=32, description="size (px)", style=wide,
                                layout=box, continuous_update=False)
        self.seed = w.IntText(value=0, description="seed", style=wide, layout=w.Layout(width="220px"))
        # Options synthesize may have (shown only then): a menu of the Literal's values, else a switch.
        self.choices: dict[str, Any] = {}
        for keyword, label in CHOICE_OPTIONS.items():
            if keyword not in parameters:
                continue
            values, default = literal_choices(synthesize, keyword), parameters[keyword].default
            self.choices[keyword] = (
                w.Dropdown(options=list(values), value=default if default in values else values[0],
                           description=label, style=wide, layout=box) if values else
                w.Checkbox(value=bool(default), description=label, indent=False))
        self.preserve_colour = self.choices.get("preserve_colour")

        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.save_button = w.Button(description="Save PNG", icon="save", disabled=True)
        self.save_name = w.Text(value="", placeholder="file name (default: from the images)",
                                layout=w.Layout(width="260px"))
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="380px"))
        self.status = w.HTML("Pick images and weights, then Run.")
        self.preview = w.Image(format="png", layout=w.Layout(width=f"{preview_width}px", min_height="40px"))

        options = [self.statistic, self.steps, self.size, self.seed, *self.choices.values()]
        left = w.VBox([w.HTML("<b>Images</b>"), self.content, self.content_upload, self.styles, self.style_upload,
                       w.HTML("<b>Weights</b>"), self.content_weight, self.style_weight,
                       w.HBox([self.tv_on, self.tv_weight])])
        middle = w.VBox([w.HTML("<b>Style layers</b>"), *self.layer_weights.values(),
                         w.HTML("<b>Run</b>"), *options])
        right = w.VBox([w.HBox([self.run_button, self.stop_button]), self.progress, self.status, self.preview,
                        w.HBox([self.save_button, self.save_name])])
        self.widget = w.HBox([left, middle, right], layout=w.Layout(flex_flow="row wrap", grid_gap="12px"))

    # Uploads become options of the pickers.
    def _on_content_upload(self, change: dict[str, Any]) -> None:
        for upload in self._uploads(change["new"]):
            self.content.options = [*self.content.options, (f"upload: {upload.name}", upload)]
            self.content.value = upload

    def _on_style_upload(self, change: dict[str, Any]) -> None:
        new = self._uploads(change["new"])
        self.styles.options = [*self.styles.options, *((f"upload: {u.name}", u) for u in new)]
        self.styles.value = tuple(new) or self.styles.value

    @staticmethod
    def _uploads(value: Sequence[dict[str, Any]]) -> list[Upload]:
        return [Upload(item["name"], bytes(item["content"])) for item in value]

    def settings(self) -> JobSettings:
        """The job the widgets describe; style layers with weight 0 are left out."""
        layers = [layer for layer, s in self.layer_weights.items() if s.value > 0]
        options: dict[str, Any] = {
            "content_weight": self.content_weight.value, "style_weight": self.style_weight.value,
            "tv_weight": self.tv_weight.value if self.tv_on.value else 0.0,
            "style_layers": layers, "layer_weights": [self.layer_weights[l].value for l in layers],
            "statistic": self.statistic.value, "num_steps": self.steps.value, "seed": self.seed.value,
        }
        options.update({keyword: widget.value for keyword, widget in self.choices.items()})
        return JobSettings(styles=list(self.styles.value), content=self.content.value, size=self.size.value,
                           options=options)

    def start(self) -> None:
        """What Run does: start the job the widgets describe in a background thread."""
        if self.running:
            return
        self.job, self.result, self.error = self.settings(), None, ""
        self._stop.clear()
        self.progress.value, self.progress.max = 0, self.job.options["num_steps"]
        self.progress.bar_style = ""
        self._set_running(True)
        self.status.value = "loading images ..."
        self.thread = threading.Thread(target=self._work, args=(self.job,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """What Stop does: end the run at the next evaluation, keeping the best image so far."""
        self._stop.set()
        self.status.value = "stopping ..."

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run ends (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _work(self, job: JobSettings) -> None:
        try:
            self.result = run_job(self.net, job, self._callback)
        except Exception as error:  # shown in the panel: a background thread has nowhere else to report
            self.error = f"{type(error).__name__}: {error}"
            self.status.value = f"<span style='color:#b00'>{_escape(self.error)}</span>"
            self.progress.bar_style = "danger"
        else:
            result = self.result
            self.preview.value = _png(result.image, self.preview_width)
            ended = "done" if result.stop in ("budget", "converged") else "stopped"
            why = f"; {_escape(result.stopped)}" if result.stopped else ""
            self.status.value = (f"{ended}: {len(result.history)} evaluations in {result.seconds:.1f} s, "
                                 f"best loss {result.best_loss:.4g} (evaluation {result.best_step}){why}")
            self.progress.bar_style = "success" if ended == "done" else "warning"
        finally:
            self._set_running(False)

    def _callback(self, info: StepInfo) -> bool:
        self.progress.max, self.progress.value = info.num_steps, info.step
        if info.step == 1 or info.step % self.preview_every == 0:
            self.preview.value = _png(info.image, self.preview_width)
            self.status.value = f"evaluation {info.step} / {info.num_steps}, loss {info.loss:.4g}"
        return self._stop.is_set()

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        self.save_button.disabled = running or self.result is None

    def default_name(self) -> str:
        """``panel_<content>_<style>`` (``texture`` instead of a content name)."""
        job = self.job or self.settings()
        content = "texture" if job.content is None else _slug(_source_name(job.content))
        return "_".join(["panel", content, *(_slug(_source_name(s)) for s in job.styles)])

    def _save_clicked(self) -> None:
        try:
            self.save()
        except (OSError, ValueError) as error:
            self.status.value = f"<span style='color:#b00'>could not save: {_escape(str(error))}</span>"

    def save(self, name: str | None = None) -> Path:
        """What Save does: write the result as PNG with its parameters; never overwrites a file."""
        if self.result is None or self.job is None:
            raise ValueError("Nothing to save yet: press Run first.")
        stem = _slug(name or self.save_name.value or self.default_name())
        path = self.results_dir / f"{stem}.png"
        counter = 2
        while path.exists():
            path = self.results_dir / f"{stem}_{counter}.png"
            counter += 1
        self.result.save(str(path), name=path.stem, size_px=self.job.size, **self.job.describe())
        self.status.value = f"saved {_escape(str(path))}"
        return path


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def style_panel(net: VGGFeatures, images_dir: str | Path = "images", results_dir: str | Path = "results",
                **kwargs: Any) -> Any:
    """The panel's widget box (display it, or make it a cell's last expression)."""
    return StylePanel(net, images_dir, results_dir, **kwargs).widget

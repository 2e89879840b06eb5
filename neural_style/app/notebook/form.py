"""The notebook panel's controls and the job they describe (``panel.py`` adds the run).

Four tabs of a fixed width: Images (content, styles, uploads, blend weights, style scale),
Weights (alpha, beta, total variation, one weight per style layer), Run (statistic, start
image, evaluations, size, seed, the menus read from ``synthesize``'s ``Literal`` keywords,
preview size) and Command (the equivalent ``neural-style`` line, rewritten on every change).
Uploaded images are stored as files in ``<results>/uploads`` and offered in every picker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from torch import Tensor

from ...core.images import ImageLoadError, image_files
from ...losses.config import STYLE_LAYERS, LossConfig, style_layer_weights
from ...losses.statistics import STATISTICS
from ...net.vgg import VGGFeatures, skeleton
from ..options import literal_choices, synthesize_defaults
from .jobs import JobSettings, command_line, free_path, slug, store_upload
from .view import command_html, copy_button, status_html, uploaded_files

TEXTURE = "(texture)"           # the content menu's value for "none: texture"
PREVIOUS = "(previous result)"  # the start menu's value for the panel's last result
# Keywords of synthesize offered as a menu (Literal values) or a switch when synthesize has them.
CHOICE_OPTIONS = {"preserve_colour": "preserve colour", "precision": "precision", "scales": "scales"}
PREVIEW_WIDTHS = (256, 384, 512, 768)
COMMAND_SIZES = (("the panel's size", 0), ("512 px", 512), ("768 px", 768), ("1024 px", 1024), ("2048 px", 2048))
CONTROLS_WIDTH = 410  # px: the controls column; the preview column takes the rest of the cell
FIELD_WIDTH = CONTROLS_WIDTH - 40  # px: a control inside a tab (the tab's border and padding take the rest)
# The panel's own starting values, smaller than synthesize's so that a first run takes seconds;
# the weights and the statistic start at the loss's defaults (LossConfig, which synthesize's
# keywords default to), the menus and the seed at synthesize's (synthesize_defaults).
PANEL_STEPS, PANEL_SIZE = 100, 192


class PanelForm:
    """The controls (``tabs``, a widget), a status line, and ``settings()``, the job they describe.

    Args:
        net: the network runs use, if loaded (the command names it); else None.
        images_dir: folder whose images are offered as content, style and start image.
        results_dir: uploads are kept in its ``uploads`` folder; the command writes there.
        backbone: the name of the network that will be loaded when ``net`` is None.
        preview_width: the preview size menu's first value.
    """

    def __init__(self, net: VGGFeatures | None, images_dir: str | Path, results_dir: str | Path, *,
                 backbone: str = "auto", preview_width: int = 384) -> None:
        import ipywidgets as w

        self.net, self.backbone, self.results_dir = net, backbone, Path(results_dir)
        self.previous: Tensor | None = None  # the last result's image, a start for the next run
        self.status = w.HTML(status_html("Pick images and weights, then Run."), layout=w.Layout(width="100%"))
        files = image_files(images_dir)
        self._image_controls(w, files)
        self._weight_controls(w)
        self._run_controls(w, files, preview_width)
        self._command_controls(w)
        self.tabs = self._tabs(w)
        self._connect_form()
        self.refresh_command()

    def _image_controls(self, w: Any, files: Sequence[Path]) -> None:
        by_name = {p.name: p for p in files}
        first_content = by_name.get("chelsea.png", files[0] if files else TEXTURE)
        first_style = by_name.get("great_wave.jpg", files[-1] if files else None)
        self.content = w.Dropdown(options=[("none: texture", TEXTURE)] + [(p.name, p) for p in files],
                                  value=first_content, description="content", **field_layout())
        self.styles = w.SelectMultiple(options=[(p.name, p) for p in files], rows=5, description="style(s)",
                                       value=() if first_style is None else (first_style,), **field_layout())
        upload = w.Layout(width="240px", margin="0 0 4px 124px")
        self.content_upload = w.FileUpload(accept="image/*", multiple=False, description="upload content",
                                           layout=upload)
        self.style_upload = w.FileUpload(accept="image/*", multiple=True, description="upload styles",
                                         layout=upload)
        self.blend: dict[Path, Any] = {}
        self.blend_box = w.VBox([])
        self.scale_on = w.Checkbox(value=False, description="style scale", indent=False,
                                   layout=w.Layout(width="110px"))
        self.style_scale = w.FloatSlider(value=1.0, min=0.25, max=3.0, step=0.05, disabled=True,
                                         description="× result", continuous_update=False,
                                         style={"description_width": "60px"}, layout=w.Layout(width="250px"))

    def _weight_controls(self, w: Any) -> None:
        log = dict(base=10, readout_format=".3g", continuous_update=False, **field_layout())
        self.content_weight = w.FloatLogSlider(value=LossConfig.content_weight, min=-3, max=3,
                                               description="content weight α", **log)
        self.style_weight = w.FloatLogSlider(value=LossConfig.style_weight, min=1, max=7,
                                             description="style weight β", **log)
        self.tv_on = w.Checkbox(value=LossConfig.tv_weight > 0, description="total variation", indent=False,
                                layout=w.Layout(width="125px"))
        self.tv_weight = w.FloatLogSlider(value=LossConfig.tv_weight or 1e8, min=5, max=11, base=10, readout_format=".3g",
                                          disabled=LossConfig.tv_weight == 0,
                                          continuous_update=False, description="γ", style={"description_width": "20px"},
                                          layout=w.Layout(width="240px"))
        # Multipliers of synthesize's default w_l (losses.config.style_layer_weights): 1 everywhere is the default.
        self.layer_weights = {layer: w.FloatSlider(value=1.0, min=0, max=4, step=0.1,
                                                   description=f"× w {layer}", continuous_update=False, **field_layout())
                              for layer in STYLE_LAYERS}

    def _run_controls(self, w: Any, files: Sequence[Path], preview_width: int) -> None:
        defaults = synthesize_defaults()
        self.statistic = w.Dropdown(options=list(STATISTICS), value=LossConfig.statistic, description="statistic",
                                    **field_layout())
        starts = literal_choices("init") or ("auto",)
        self.init = w.Dropdown(options=[*((s, s) for s in starts), *((f"image: {p.name}", p) for p in files)], value=starts[0],
                               description="start from", **field_layout())
        self.init_upload = w.FileUpload(accept="image/*", multiple=False, description="upload a start image",
                                        layout=w.Layout(width="240px", margin="0 0 4px 124px"))
        self.steps = w.IntSlider(value=PANEL_STEPS, min=10, max=1000, step=10, description="evaluations",
                                 continuous_update=False, **field_layout())
        self.size = w.IntSlider(value=PANEL_SIZE, min=64, max=1024, step=32, description="size (px)",
                                continuous_update=False, **field_layout())
        self.seed = w.IntText(value=defaults.get("seed", 0), description="seed", style=field_layout()["style"],
                              layout=w.Layout(width="220px"))
        self.choices: dict[str, Any] = {}
        for keyword, label in CHOICE_OPTIONS.items():
            if keyword in defaults:
                values, default = literal_choices(keyword), defaults[keyword]
                self.choices[keyword] = (
                    w.Dropdown(options=list(values), value=default if default in values else values[0],
                               description=label, **field_layout()) if values else
                    w.Checkbox(value=bool(default), description=label, indent=False))
        self.preserve_colour = self.choices.get("preserve_colour")
        self.preview_width = w.Dropdown(options=sorted({*PREVIEW_WIDTHS, preview_width}), value=preview_width,
                                        description="preview (px)", **field_layout())

    def _command_controls(self, w: Any) -> None:
        self.command_size = w.Dropdown(options=COMMAND_SIZES, value=0, description="render at", **field_layout())
        self.command_text = ""  # the command itself; ``command`` shows it, breaking lines only between words
        self.command = w.HTML("", layout=w.Layout(width=f"{FIELD_WIDTH}px"))
        self.copy = w.HTML("")
        self.command_notes = w.HTML("")
        # Save's file name (shown beside the Save button): the command's -o follows it.
        self.save_name = w.Text(value="", placeholder="file name (default: from the images and size)",
                                layout=w.Layout(flex="1 1 0%", min_width="120px"))

    def _tabs(self, w: Any) -> Any:
        images = w.VBox([self.content, self.content_upload, self.styles, self.style_upload, self.blend_box,
                         w.HBox([self.scale_on, self.style_scale])])
        weights = w.VBox([self.content_weight, self.style_weight, w.HBox([self.tv_on, self.tv_weight]),
                          w.HTML("<b>style layers</b>: multiples of the default w<sub>l</sub>, which balance "
                                 "the layers (0 leaves a layer out)"), *self.layer_weights.values()])
        run = w.VBox([self.statistic, self.init, self.init_upload, self.steps, self.size, self.seed,
                      *self.choices.values(), self.preview_width])
        command = w.VBox([w.HTML("<div style='line-height:1.4;margin-bottom:6px'>The same settings from a shell, in "
                                 "the project's folder with its environment active; a larger size re-renders "
                                 "them larger:</div>"),
                          self.command_size, self.command, self.copy, self.command_notes])
        tabs = w.Tab(children=[images, weights, run, command], layout=w.Layout(width=f"{CONTROLS_WIDTH}px"))
        for index, title in enumerate(("Images", "Weights", "Run", "Command")):
            tabs.set_title(index, title)
        return tabs

    def _connect_form(self) -> None:
        self.content_upload.observe(self._uploaded(self._use_as_content), names="value")
        self.style_upload.observe(self._uploaded(self._use_as_styles), names="value")
        self.init_upload.observe(self._uploaded(self._use_as_start), names="value")
        self.styles.observe(lambda _: self._refresh_blend(), names="value")
        self.tv_on.observe(lambda change: setattr(self.tv_weight, "disabled", not change["new"]), names="value")
        self.scale_on.observe(lambda change: setattr(self.style_scale, "disabled", not change["new"]),
                              names="value")
        self.content.observe(lambda change: setattr(self.content_weight, "disabled", change["new"] == TEXTURE),
                             names="value")
        self.content_weight.disabled = self.content.value == TEXTURE
        for widget in [*self._inputs(), self.save_name]:
            widget.observe(lambda _: self.refresh_command(), names="value")
        self._refresh_blend()

    def _inputs(self) -> list[Any]:
        return [self.content, self.styles, self.scale_on, self.style_scale, self.content_weight, self.style_weight,
                self.tv_on, self.tv_weight, *self.layer_weights.values(), self.statistic, self.init, self.steps,
                self.size, self.seed, *self.choices.values(), self.command_size]

    # Uploads are stored as files and offered in every picker.
    def _uploaded(self, use: Callable[[list[Path]], None]) -> Callable[[dict[str, Any]], None]:
        def handle(change: dict[str, Any]) -> None:
            paths = []
            for name, data in uploaded_files(change["new"]):
                try:
                    paths.append(store_upload(name, data, self.results_dir / "uploads"))
                except (ImageLoadError, OSError) as error:
                    self.status.value = status_html(str(error), error=True)
            self._offer([p for p in paths if p not in dict(self.styles.options).values()])
            if paths:
                use(paths)
        return handle

    def _offer(self, paths: Sequence[Path]) -> None:
        self.content.options = [*self.content.options, *((f"upload: {p.name}", p) for p in paths)]
        self.styles.options = [*self.styles.options, *((f"upload: {p.name}", p) for p in paths)]
        self.init.options = [*self.init.options, *((f"upload: {p.name}", p) for p in paths)]

    def _use_as_content(self, paths: list[Path]) -> None:
        self.content.value = paths[-1]

    def _use_as_styles(self, paths: list[Path]) -> None:
        self.styles.value = tuple(paths)

    def _use_as_start(self, paths: list[Path]) -> None:
        self.init.value = paths[-1]

    def _refresh_blend(self) -> None:
        """One weight slider per chosen style when there are several (their target is a blend)."""
        import ipywidgets as w

        styles = list(self.styles.value)
        for path in styles:
            if path not in self.blend:
                self.blend[path] = w.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.1, description=path.name,
                                                 continuous_update=False, **field_layout())
                self.blend[path].observe(lambda _: self.refresh_command(), names="value")
        header = w.HTML("<b>blend weights</b> (the style target is their weighted average)")
        self.blend_box.children = [header, *(self.blend[p] for p in styles)] if len(styles) > 1 else []

    def settings(self) -> JobSettings:
        """The job the widgets describe. Style layers with weight 0 are left out; settings equal
        to ``synthesize``'s defaults (its layer weights, equal blend weights) are not spelled out."""
        content = None if self.content.value == TEXTURE else self.content.value
        styles = list(self.styles.value)
        layers = [layer for layer, s in self.layer_weights.items() if s.value > 0]
        options: dict[str, Any] = {
            "style_weight": rounded(self.style_weight.value), "style_layers": layers,
            "tv_weight": rounded(self.tv_weight.value) if self.tv_on.value else 0.0,
            "statistic": self.statistic.value, "num_steps": self.steps.value, "seed": self.seed.value}
        if content is not None:
            options["content_weight"] = rounded(self.content_weight.value)
        multipliers = [self.layer_weights[layer].value for layer in layers]
        if layers and any(m != 1 for m in multipliers):
            planned = skeleton(name="vgg19" if self.backbone == "auto" else self.backbone)
            defaults = style_layer_weights(self.net if self.net is not None else planned, layers, None)
            options["layer_weights"] = [rounded(m * d) for m, d in zip(multipliers, defaults)]
        blend = [self.blend[s].value if s in self.blend else 1.0 for s in styles]
        if len(set(blend)) > 1:
            options["blend_weights"] = blend
        if self.scale_on.value:
            options["style_scale"] = self.style_scale.value
        options.update({keyword: widget.value for keyword, widget in self.choices.items()})
        start = self.init.value
        if isinstance(start, str) and start != PREVIOUS:
            options["init"] = start
        init_image = self.previous if start == PREVIOUS else start if isinstance(start, Path) else None
        return JobSettings(styles=styles, content=content, size=self.size.value, options=options,
                           init_image=init_image)

    def command_for(self, output: Path | None = None) -> tuple[str, list[str]]:
        """The ``neural-style`` command for the current settings (at the Command tab's size).

        Its ``-o`` is the file Save would write now (``save_path``); rendered at another size, the
        same name with that size (``panel_chelsea_great_wave_1024px.png``).
        """
        job = self.settings()
        size = self.command_size.value or job.size
        if output is None:
            output = self.save_path(job)
            if size != job.size:
                typed = slug(self.save_name.value) if self.save_name.value.strip() else ""
                job.size = size
                output = self.results_dir / f"{f'{typed}_{size}px' if typed else self.default_name(job)}.png"
        job.size = size
        return command_line(job, output, self.net.info if self.net is not None else self.backbone)

    def save_path(self, job: JobSettings | None = None) -> Path:
        """Where Save writes: the typed name, else ``default_name``, in the results folder; never an
        existing file (``_2``, ``_3`` ... are added)."""
        name = self.save_name.value.strip() or self.default_name(job)
        return free_path(self.results_dir, slug(name), ".png")

    def refresh_command(self) -> None:
        """Rewrite the Command tab's line from the widgets (on every change)."""
        text, notes = self.command_for()
        self.command_text = text
        self.command.value = command_html(text)
        self.copy.value = copy_button(text)
        self.command_notes.value = "".join(status_html(f"Note: {note}.") for note in notes)

    def default_name(self, job: JobSettings | None = None) -> str:
        """``panel_<content>_<style>..._<size>px`` (``texture`` instead of a content name)."""
        job = job or self.settings()
        content = "texture" if job.content is None else slug(job.content.name)
        return "_".join(["panel", content, *(slug(s.name) for s in job.styles), f"{job.size}px"])


def field_layout() -> dict[str, Any]:
    """Style and layout of a full-width control in the controls column."""
    import ipywidgets as w

    return {"style": {"description_width": "120px"}, "layout": w.Layout(width=f"{FIELD_WIDTH}px")}


def rounded(value: float) -> float:
    """A log slider's value to 3 significant digits, as its readout shows it."""
    return float(f"{value:.3g}")

"""One run of the notebook panel, described by its settings, with no widgets involved.

``JobSettings`` says which images and which keywords of ``synthesize`` a run uses; ``run_settings``
loads the images and runs it; ``saved_fields`` is what the saved PNG records besides the run's
parameters; ``command_line`` is the ``neural-style`` command that renders the same settings
(raise its ``--size`` to render them larger). Uploaded images become files (``store_upload``),
so a run, its PNG and its command name real files.
"""

from __future__ import annotations

import inspect
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor

from ...core.images import IMAGE_SUFFIXES, ImageLoadError, load_image
from ...core.paths import input_files
from ...net.vgg import BackboneInfo, VGGFeatures
from ...optim.record import Callback
from ...synthesis.run import SynthesisResult, synthesize
from ..cli.preflight import PROG
from ..options import SYNTHESIS_OPTIONS, Option

# Keywords that only mean something with a content image.
CONTENT_ONLY = ("content_weight", "content_layers", "preserve_colour")
LAST_RESULT = "the panel's previous result"


@dataclass
class JobSettings:
    """Everything one run needs.

    Attributes:
        styles: one or more style image files.
        content: the content image file; None synthesises a texture.
        size: long side in pixels every image is loaded at (content, styles, start image).
        options: keywords of ``synthesize``, e.g. ``content_weight``, ``style_layers``,
            ``layer_weights``, ``blend_weights``, ``statistic``, ``init``, ``num_steps``, ``seed``.
        init_image: an image to start from (a file, or an image in memory such as a previous
            result); it replaces ``options["init"]``.
    """

    styles: Sequence[Path]
    content: Path | None = None
    size: int = 256
    options: dict[str, Any] = field(default_factory=dict)
    init_image: Path | Tensor | None = None

    def describe(self) -> dict[str, Any]:
        """The input files, for the PNG metadata: relative to the project (``portable_path``)."""
        return input_files(self.content, self.styles,
                           LAST_RESULT if isinstance(self.init_image, Tensor) else self.init_image)



def slug(text: str) -> str:
    """A file-name-safe version of a file's stem: ``Starry Night.jpg`` -> ``Starry_Night``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(text).stem).strip("_") or "image"


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem.suffix``, or ``stem_2``, ``stem_3``, ... when that file exists."""
    path, counter = folder / f"{stem}{suffix}", 2
    while path.exists():
        path, counter = folder / f"{stem}_{counter}{suffix}", counter + 1
    return path


def store_upload(name: str, data: bytes, folder: Path) -> Path:
    """Write an uploaded image to ``folder`` and check that it decodes; the file's path.

    The same bytes uploaded again under the same name give the same file; another file of that
    name is kept (the new one gets a suffix).

    Raises:
        ImageLoadError: the bytes are not an image ``load_image`` reads; the message names the
            upload, and no file is left behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in IMAGE_SUFFIXES else ".img"
    same = folder / f"{slug(name)}{suffix}"
    if same.is_file() and same.read_bytes() == data:
        return same
    path = free_path(folder, slug(name), suffix)
    path.write_bytes(data)
    try:
        load_image(path, 16)
    except ImageLoadError as error:
        path.unlink()
        raise ImageLoadError(f"The upload {name}: {str(error).replace(str(path), 'the file')}") from None
    return path


def run_settings(net: VGGFeatures, settings: JobSettings,
            callback: Callback | None = None) -> SynthesisResult:
    """Load the images of ``settings`` and run ``synthesize``; what the panel's Run button calls.

    ``callback`` returning True stops the run; the result then holds the best image so far.
    """
    if not settings.styles:
        raise ValueError("Pick at least one style image.")
    styles = [load_image(s, settings.size) for s in settings.styles]
    content = None if settings.content is None else load_image(settings.content, settings.size)
    options = dict(settings.options)
    if settings.init_image is not None:
        init = settings.init_image
        options["init"] = load_image(init, settings.size) if isinstance(init, Path) else init
    return synthesize(net, style=styles, content=content, callback=callback, **options)


def saved_fields(result: SynthesisResult, settings: JobSettings, command: str = "") -> dict[str, Any]:
    """What a saved PNG records besides the run's parameters (``saved_params``): the input files,
    the command, and for a run that ended early why it ended (``stopped``)."""
    fields = settings.describe()
    if command:
        fields["command"] = command
    if result.stopped:
        fields["stopped"] = result.stopped
    return fields


def saved_params(result: SynthesisResult) -> dict[str, Any]:
    """The run's parameters as the panel saves them: for a run that ended early, ``num_steps`` is
    the evaluations made (what reproduces the image) and ``num_steps_requested`` the budget."""
    params = dict(result.params)
    done = len(result.history)
    if done != params.get("num_steps", done):
        params["num_steps"], params["num_steps_requested"] = done, params["num_steps"]
    return params


def command_line(settings: JobSettings, output: str | Path, backbone: BackboneInfo | str = "auto"
                 ) -> tuple[str, list[str]]:
    """The ``neural-style`` command that renders ``settings``, and what it cannot express.

    Options equal to ``synthesize``'s defaults are left out. ``backbone`` is the network the
    panel runs (its name, architecture, pooling and normalisation become options) or the name
    it will load.

    Returns:
        (the command, quoted for a POSIX shell; notes on settings the command does not carry).
    """
    args = [PROG, *(["--texture"] if settings.content is None else [str(settings.content)])]
    args += [str(s) for s in settings.styles]
    args += ["-o", str(output), "--size", str(settings.size), *backbone_arguments(backbone)]
    defaults = {name: p.default for name, p in inspect.signature(synthesize).parameters.items()}
    options = {o.keyword: o for o in SYNTHESIS_OPTIONS}
    notes = []
    for keyword, value in settings.options.items():
        if settings.content is None and keyword in CONTENT_ONLY or same_value(value, defaults.get(keyword)):
            continue
        if keyword not in options:
            notes.append(f"{keyword}={value!r}: the command has no option for it")
            continue
        args += option_arguments(options[keyword], value)
    if isinstance(settings.init_image, Path):
        args += ["--init-image", str(settings.init_image)]
    elif settings.init_image is not None:
        notes.append("it starts from the previous result, which exists only in this kernel: save it and "
                     "pass the file with --init-image FILE")
    return shlex.join(args), notes


def backbone_arguments(backbone: BackboneInfo | str) -> list[str]:
    """The command's options that load ``backbone`` (a loaded network's info, or a name)."""
    if isinstance(backbone, str):
        return [] if backbone == "auto" else ["--backbone", backbone]
    args = ["--backbone", backbone.name]
    if backbone.name == "random" and backbone.arch != "vgg19":
        args += ["--arch", backbone.arch]
    if backbone.pooling != "avg":
        args += ["--pooling", backbone.pooling]
    return args + (["--normalized"] if backbone.normalized else [])


def option_arguments(option: Option, value: Any) -> list[str]:
    """``option`` set to ``value`` as command-line words (the flag, then its values)."""
    flag = option.flag or "--" + option.keyword.replace("_", "-")
    if option.kind is bool:
        return [flag if value else "--no-" + flag.removeprefix("--")]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        return [flag, ",".join(f"{side}:{steps}" for side, steps in value)]  # a coarse-to-fine schedule
    values = value if isinstance(value, (list, tuple)) else [value]
    return [flag, *(number(v) if isinstance(v, float) else str(v) for v in values)]


def number(value: float) -> str:
    """The shortest text that reads back as ``value``: ``1000.0`` -> ``1000``, ``0.25`` -> ``0.25``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def same_value(value: Any, default: Any) -> bool:
    """Whether a setting equals ``synthesize``'s default (lists and tuples compare by items)."""
    if isinstance(value, Tensor) or isinstance(default, Tensor):
        return False
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return bool(value == default)

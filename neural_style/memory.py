"""How much memory a synthesis needs, how much the device has, and a check before a run starts.

Optimising an image keeps, for the backward pass, the activations of every module the forward
pass runs (convolution, ReLU and pooling outputs up to the deepest requested layer). For a
VGG, that is about

    bytes ~= e * sum_m N_m H_m W_m  +  optimiser state  +  overhead

where e is the element size (4 for float32), m runs over the modules up to the deepest
layer and the overhead (allocator, oneDNN scratch, Gram matrices) is about 80 MiB. The
optimiser's state for n = 3 H W pixels, with k = 20 correction pairs:

* ``lbfgs`` (on the image's device): the (2k, n) pairs in the image's dtype (float32), about ten
  float64 n-vectors (the iterate, the gradient, the direction, the Cauchy point, the bounds'
  masks, the best image) and the Cauchy point's breakpoint blocks, up to ``lbfgsb.CHUNK_ALL``
  rows of 2k values, a few at a time: 4 * 2 k * n + 8 * 10 * n + 4 * 4 * 2 k * min(n, CHUNK_ALL)
  bytes;
* ``scipy-lbfgsb``: scipy's float64 history and work arrays, 8 * (2 k + 6) * n;
* ``adam``: two float32 moments and the gradient, 4 * 4 * n.

Measured with scipy's L-BFGS-B (peak RSS increase over the loaded model, one forward + backward
through a VGG16 up to conv5_1, float32, CPU, one thread): 217 MiB at 256 px and 641 MiB at
512 px against 221 and 642 MiB from the formula; a 3-evaluation run added 71 and 292 MiB more
(formula: 69 and 276 MiB).
"""

from __future__ import annotations

import functools
from typing import Iterable, Sequence

import torch
from torch import nn

from .backbones import BackboneInfo, VGGFeatures
from .devices import InsufficientMemoryError, available_bytes  # noqa: F401  (both belong to this module's API)

OVERHEAD_BYTES = 80 * 2**20
LBFGS_HISTORY = 20  # correction pairs kept by both L-BFGS-B implementations (optimise.HISTORY_SIZE)
BREAKPOINT_ROWS = 1 << 21  # largest block of the Cauchy point search (lbfgsb.CHUNK_ALL)


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
    """Bytes the optimiser keeps for an image of ``pixels`` values (formulas in the module docstring)."""
    pairs = 2 * LBFGS_HISTORY
    if optimizer == "lbfgs":
        return 4 * pairs * pixels + 8 * 10 * pixels + 4 * 4 * pairs * min(pixels, BREAKPOINT_ROWS)
    if optimizer == "scipy-lbfgsb":
        return 8 * (pairs + 6) * pixels
    return 4 * 4 * pixels


def largest_fitting_size(backbone: VGGFeatures, size: tuple[int, int], layers: Sequence[str], budget: int,
                         **kwargs) -> tuple[int, int] | None:
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


@functools.cache
def skeleton(arch: str = "vgg19") -> VGGFeatures:
    """The modules of ``arch`` without weights (on the meta device): its layer names and shapes
    are there for ``estimate_bytes`` and ``check_memory``, built before any weights are loaded.
    Built once per architecture and shared: callers only read it."""
    with torch.device("meta"):
        return VGGFeatures(arch, nn.Identity(), BackboneInfo("skeleton", arch, "none", "avg"))


LIBRARY_HINT = "load the images with a smaller size: load_image(path, size)"


def check_memory(backbone: VGGFeatures, size: tuple[int, int], layers: Sequence[str], *,
                 target_sizes: Sequence[tuple[int, int]] = (), available: int | None = None,
                 device: torch.device | None = None, smaller: str = LIBRARY_HINT, **kwargs) -> int:
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
    targets = {tuple(s): estimate_bytes(backbone, tuple(s), layers, requires_grad=False,
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


"""Colour preservation for style transfer (Gatys et al. 2017, "Controlling Perceptual Factors").

Two ways to keep the content's colours while taking the style's strokes:

* **luminance-only transfer**: stylise the luminance Y of YIQ and keep the content's chroma
  (I, Q). The style's luminance is first given the content's mean and standard deviation.
* **colour matching**: recolour the style image so its colour statistics equal the content's,
  then transfer as usual (linear mean/covariance transform, or per-channel histogram matching).

Every image is a tensor (1, 3, H, W) of RGB values in [0, 1]; functions are pure.
"""

from __future__ import annotations

from typing import Callable, Literal, get_args

import torch
from torch import Tensor

from ..losses.distributions import match_histograms

ColourMode = Literal["none", "luminance", "match"]
COLOUR_MODES: tuple[str, ...] = get_args(ColourMode)
MatchMethod = Literal["linear", "histogram"]

# NTSC YIQ (FCC 1953 coefficients). The rows of I and Q sum to zero, so grey has no chroma and
# the first column of the inverse is (1, 1, 1): RGB = Y + (a chroma offset that depends on I, Q).
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)  # the exact inverse, not the rounded published one


def _check_image(image: Tensor, name: str) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}.")


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    """Per-pixel 3x3 colour transform: out[:, i] = sum_j matrix[i, j] image[:, j]."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.dtype).to(image.device), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB (B, 3, H, W) -> YIQ (B, 3, H, W): Y = 0.299 R + 0.587 G + 0.114 B, I and Q chroma."""
    _check_image(image, "The image")
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    """YIQ (B, 3, H, W) -> RGB (B, 3, H, W), the exact inverse of ``rgb_to_yiq`` (no clamping)."""
    _check_image(image, "The image")
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel of YIQ, shape (B, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


def grey(y: Tensor) -> Tensor:
    """(B, 1, H, W) luminance -> (B, 3, H, W) grey RGB image with that luminance (R = G = B = Y)."""
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """Grey version of ``style`` whose luminance has the content's mean and standard deviation.

    Y_s' = sigma_c / sigma_s (Y_s - mu_s) + mu_c (Gatys et al. 2017, section 3.1), clamped to
    [0, 1]. A flat style (sigma_s = 0) keeps its shape and only moves to the content's mean.

    Returns:
        (1, 3, H_s, W_s) grey image.
    """
    y_s, y_c = luminance(style), luminance(content)
    mu_s, sigma_s = y_s.mean(), y_s.std(correction=0)
    mu_c, sigma_c = y_c.mean(), y_c.std(correction=0)
    gain = sigma_c / sigma_s if sigma_s > 1e-8 else torch.ones_like(sigma_s)
    return grey((gain * (y_s - mu_s) + mu_c).clamp(0, 1))


def combine_luminance(y_source: Tensor, chroma_source: Tensor) -> Tensor:
    """RGB image with the luminance of ``y_source`` and the chroma (I, Q) of ``chroma_source``.

    Since RGB = Y (1, 1, 1) + d(I, Q), a pixel stays in [0, 1] exactly when
    -min_c d_c <= Y <= 1 - max_c d_c. The luminance is clipped to that interval (non-empty when
    the chroma comes from a valid RGB image), so the chroma is kept exactly and no RGB clamping
    is needed; only very bright or dark pixels of saturated colours lose some luminance.

    Args:
        y_source: image whose luminance is used, (B, 3, H, W) RGB.
        chroma_source: image whose I and Q are used, same shape.

    Returns:
        (B, 3, H, W) RGB in [0, 1] (up to float rounding).
    """
    if y_source.shape != chroma_source.shape:
        raise ValueError(f"The two images must have the same shape, got {tuple(y_source.shape)} "
                         f"and {tuple(chroma_source.shape)}.")
    yiq = rgb_to_yiq(chroma_source)
    offset = yiq_to_rgb(torch.cat([torch.zeros_like(yiq[:, :1]), yiq[:, 1:]], dim=1))
    low, high = -offset.min(dim=1, keepdim=True).values, 1 - offset.max(dim=1, keepdim=True).values
    y = torch.maximum(torch.minimum(luminance(y_source), high), low)
    return y + offset


def _sqrt_and_inverse_sqrt(cov: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Sigma^{1/2} and (Sigma + eps I)^{-1/2} of a symmetric PSD 3x3 matrix by eigendecomposition."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(0)
    sqrt = vectors @ torch.diag(values.sqrt()) @ vectors.T
    inv_sqrt = vectors @ torch.diag((values + eps).rsqrt()) @ vectors.T
    return sqrt, inv_sqrt


def match_colour(style: Tensor, content: Tensor, method: MatchMethod = "linear", *,
                 eps: float = 1e-4) -> Tensor:
    """Recolour ``style`` so its colour distribution matches ``content``'s.

    ``linear`` (Gatys et al. 2017, section 3.2, the eigendecomposition variant): every pixel x
    becomes x' = A (x - mu_s) + mu_c with A = Sigma_c^{1/2} Sigma_s^{-1/2}, so the style's RGB
    mean and covariance become the content's (exactly, up to ``eps`` and clamping). ``eps`` is
    added to Sigma_s's eigenvalues so a grey or flat style does not blow up.

    ``histogram``: each RGB channel of the style is mapped onto the content's values of that
    channel by rank (sort-based histogram matching; channels are matched independently).

    Args:
        style: (1, 3, H_s, W_s) in [0, 1].
        content: (1, 3, H_c, W_c) in [0, 1].
        method: ``linear`` or ``histogram``.
        eps: regulariser of Sigma_s (linear only).

    Returns:
        The recoloured style, (1, 3, H_s, W_s) in [0, 1].
    """
    _check_image(style, "The style image")
    _check_image(content, "The content image")
    if style.shape[0] != 1 or content.shape[0] != 1:
        raise ValueError("match_colour takes one style and one content image (batch size 1).")
    s = style.flatten(2)[0].double()    # (3, M_s)
    c = content.flatten(2)[0].double()  # (3, M_c)
    if method == "linear":
        mu_s, mu_c = s.mean(dim=1, keepdim=True), c.mean(dim=1, keepdim=True)
        cov_s = (s - mu_s) @ (s - mu_s).T / s.shape[1]
        cov_c = (c - mu_c) @ (c - mu_c).T / c.shape[1]
        sqrt_c, _ = _sqrt_and_inverse_sqrt(cov_c, 0.0)
        _, inv_sqrt_s = _sqrt_and_inverse_sqrt(cov_s, eps)
        out = sqrt_c @ inv_sqrt_s @ (s - mu_s) + mu_c
    elif method == "histogram":
        out = match_histograms(s[None], c.sort(dim=1).values[None])[0]
    else:
        raise ValueError(f"Unknown colour matching method {method!r}; choose 'linear' or 'histogram'.")
    return out.reshape(style.shape).to(style.dtype).clamp(0, 1)


def check_colour_mode(mode: str) -> None:
    """ValueError unless ``mode`` is one of ``COLOUR_MODES``."""
    if mode not in COLOUR_MODES:
        raise ValueError(f"Unknown preserve_colour {mode!r}; choose 'none', 'luminance' or 'match'.")


def preserve_colour(mode: str, content: Tensor | None, styles: list[Tensor]
                    ) -> tuple[Tensor | None, list[Tensor], Callable[[Tensor], Tensor]]:
    """The pre- and post-processing of a colour-preserving transfer.

    Args:
        mode: ``none``; ``luminance`` (transfer grey luminance images, then put the result's
            luminance under the content's chroma); ``match`` (recolour each style to the
            content's colours with ``match_colour(..., "linear")``).
        content: the content image (1, 3, H, W); required unless ``mode`` is ``none``.
        styles: the style images.

    Returns:
        (content to optimise against, styles to use, function that maps the optimised image to
        the final one).
    """
    check_colour_mode(mode)
    if mode == "none":
        return content, styles, lambda image: image
    if content is None:
        raise ValueError(f"preserve_colour={mode!r} keeps the colours of a content image, and a texture has "
                         "none; give a content image or use preserve_colour='none'.")
    if mode == "match":
        return content, [match_colour(s, content) for s in styles], lambda image: image
    original = content

    def restore(image: Tensor) -> Tensor:
        return combine_luminance(image, original.to(image.device)).clamp(0, 1)

    return grey(luminance(content)), [match_luminance(s, content) for s in styles], restore

"""Moments of a layer's feature vectors and the distances between them: the primitives of every style loss.

Notation (Gatys et al.): a layer l has N_l channels and M_l = H_l * W_l positions; its
activations F^l are an (N_l, M_l) matrix, one column per position. Tensors here keep a batch
dimension: ``features`` has shape (B, N, H, W).

* Gram matrix    G = F F^T = sum_k f_k f_k^T                   (N, N)   -- the paper
* mean           mu = (1/M) sum_k f_k                          (N,)
* covariance     Sigma = (1/M) sum_k (f_k - mu)(f_k - mu)^T     (N, N)   = Gram of F - mu, over M

They are tied by G / M = Sigma + mu mu^T. The distances are written in the units of the paper's
E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2 = 1/(4 N^2) ||G/M - A/M||^2, so that the statistics
built on them share one style weight.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

Representation = dict[str, Tensor]


def flatten_positions(features: Tensor) -> Tensor:
    """(B, N, H, W) -> (B, N, M) with M = H * W.

    For channels-last activations (as the synthesis computes them) this is a view, not a copy, so
    gradients flow back in the network's own layout (a mismatch costs a full copy per layer).
    """
    if features.dim() != 4:
        raise ValueError(f"Expected features of shape (B, N, H, W), got {tuple(features.shape)}.")
    if features.is_contiguous(memory_format=torch.channels_last):
        b, n = features.shape[:2]
        return features.permute(0, 2, 3, 1).reshape(b, -1, n).transpose(1, 2)
    return features.flatten(2)


def outer_product(flat: Tensor) -> Tensor:
    """F F^T of (B, N, M) features, with the backward dF = (dG + dG^T) F: one matrix product instead
    of autograd's two and their sum (these products dominate an evaluation in bf16)."""
    return SymmetricProduct.apply(flat)


class SymmetricProduct(torch.autograd.Function):
    """G = F F^T with the backward of ``outer_product``."""

    @staticmethod
    def forward(ctx: Any, flat: Tensor) -> Tensor:
        ctx.save_for_backward(flat)
        return flat @ flat.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (flat,) = ctx.saved_tensors
        symmetric = grad + grad.transpose(1, 2)
        if flat.stride(1) == 1:  # a channels-last view: give the gradient the same layout
            return (flat.transpose(1, 2) @ symmetric).transpose(1, 2)
        return symmetric @ flat


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix G_ij = sum_k F_ik F_jk of the paper (not normalised).

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N, N).
    """
    return outer_product(flatten_positions(features))


def gram_over_positions(features: Tensor) -> Tensor:
    """G / M of features (B, N, H, W): (B, N, N), the normalised Gram matrix the style losses compare."""
    return gram_matrix(features) / (features.shape[-1] * features.shape[-2])


def feature_mean(features: Tensor) -> Tensor:
    """Mean feature vector mu_i = (1/M) sum_k F_ik.

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N).
    """
    return flatten_positions(features).mean(dim=2)


def feature_covariance(features: Tensor) -> Tensor:
    """Covariance Sigma = (1/M) (F - mu)(F - mu)^T: the Gram matrix of the centred features over M.

    This is the maximum-likelihood (biased) covariance, ``numpy.cov(F, bias=True)``.

    Args:
        features: (B, N, H, W).

    Returns:
        (B, N, N).
    """
    flat = flatten_positions(features)
    return outer_product(flat - flat.mean(dim=2, keepdim=True)) / flat.shape[2]


def outer(mean: Tensor) -> Tensor:
    """(B, N) -> (B, N, N): mu mu^T."""
    return mean.unsqueeze(2) * mean.unsqueeze(1)


def matrix_distance(a: Tensor, b: Tensor) -> Tensor:
    """1/(4 N^2) sum_ij (a_ij - b_ij)^2 for (B, N, N) matrices."""
    return (a - b).pow(2).sum() / (4.0 * a.shape[-1] ** 2)


def mean_distance(mean: Tensor, target: Tensor) -> Tensor:
    """||nu||^2 ||mu - nu||^2 / (2 N^2) for means mu (B, N) and target means nu (B or 1, N).

    The mean-only model N(mu, sigma^2 I) of a layer's feature vectors gives the KL
    ||mu - nu||^2 / (2 sigma^2) between the image's and the style's fitted models: a squared
    distance of the means. The factor ||nu||^2 / N^2 (fixed by the style) puts it in the units of
    E_l: it is the second-order term of 1/(4 N^2) ||mu mu^T - nu nu^T||^2, the mean's part of the
    Gram loss, for mu - nu orthogonal to nu (and within a factor 2 of it in any direction).
    """
    n = mean.shape[-1]
    return (target.pow(2).sum(-1) * (mean - target).pow(2).sum(-1)).sum() / (2.0 * n**2)


def weighted_moments(features: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-region second moment, mean and mass of features (1, N, H, W) under weights (R, 1, H, W).

    Returns:
        ``(G, mu, mass)``: G_r = F diag(m_r) F^T / M_r of shape (R, N, N), mu_r = F m_r / M_r of
        shape (R, N) and M_r = sum_k m_{r,k} of shape (R,). Empty regions get G = mu = 0.
    """
    flat = features.flatten(2)[0]                 # (N, M)
    w = weights.flatten(1).to(flat.dtype)         # (R, M)
    mass = w.sum(1)
    denominator = mass.clamp_min(torch.finfo(flat.dtype).tiny)[:, None]
    weighted = flat[None] * w[:, None]            # (R, N, M)
    second = weighted @ flat.T / denominator[..., None]
    mean = weighted.sum(2) / denominator
    return second, mean, mass

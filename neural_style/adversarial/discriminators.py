"""Per-layer pixel-level discriminators and their losses, for the adversarial style loss.

Each discriminator D_l sees a layer's M_l feature vectors f_k in R^{N_l} as samples and gives one
logit s_l(f_k) per position (1x1 convolutions: it judges each position alone, so it forgets
layout like the statistics it replaces). Features are standardised per channel with the
style's statistics first, a fixed affine map that only improves the conditioning.
``loop.py`` runs the game; why logistic regression relates to moment matching is in its
docstring.
"""

from __future__ import annotations

from typing import Callable, cast

from torch import Tensor, nn
from torch.nn import functional as F

from ..losses.moments import feature_covariance, feature_mean


class _Standardize(nn.Module):
    """f -> (f - mu_style) / sqrt(var_style + eps), per channel, fixed once from the style.

    Not in the plain formulation: VGG activations span four orders of magnitude across channels
    and layers (tens at conv1_1 with Caffe inputs, ~0.1 at conv5_1, exactly 0 in dead channels),
    and a logistic regression on them is badly conditioned for a single learning rate. An affine
    map of the inputs does not change the class of functions a 1x1-convolution D can express,
    only how fast gradient descent moves in it. eps is 1% of the mean channel variance, so a
    channel that is dead in the style is not blown up by 1 / 0.
    """

    shift: Tensor
    scale: Tensor

    def __init__(self, style_features: Tensor) -> None:
        super().__init__()
        flat = style_features.detach().float().transpose(0, 1).flatten(1)  # (N, B * M)
        mean, var = flat.mean(dim=1), flat.var(dim=1, unbiased=False)
        eps = 0.01 * float(var.mean()) + 1e-12
        self.register_buffer("shift", mean.view(1, -1, 1, 1))
        self.register_buffer("scale", (var + eps).rsqrt().view(1, -1, 1, 1))

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.shift) * self.scale


class LogisticDiscriminator(nn.Module):
    """Logistic regression on each feature vector: s(f) = w . f_hat + b, one 1x1 convolution.

    Its equilibrium matches the first moments (means) of the standardised features.

    Args:
        style_features: (B, N, H, W) features of the style, used only for the standardisation.
    """

    def __init__(self, style_features: Tensor) -> None:
        super().__init__()
        self.standardize = _Standardize(style_features)
        self.linear = nn.Conv2d(style_features.shape[1], 1, 1)
        nn.init.zeros_(self.linear.weight)  # the logistic loss is convex: start at "cannot tell"
        nn.init.zeros_(cast(Tensor, self.linear.bias))

    def forward(self, features: Tensor) -> Tensor:
        """Logits (B, 1, H, W) for features (B, N, H, W); > 0 means "style"."""
        return self.linear(self.standardize(features))


class QuadraticDiscriminator(nn.Module):
    """Logistic regression on all linear and quadratic features: s(f) = w . f + f^T A f + b.

    f is the standardised feature vector. f^T A f = sum_ij A_ij f_i f_j is linear in the
    N(N+1)/2 products f_i f_j, so this is plain logistic regression on phi(f) = (f, f f^T) and
    its equilibrium matches first and second moments, i.e. mean and covariance. A full A (rather
    than the diagonal f * f, which would only see variances, or a low-rank form, which is no
    longer convex) costs one N x N 1x1 convolution per position, far less than the VGG pass.
    A is not symmetrised: f^T A f = f^T ((A + A^T) / 2) f.

    Args:
        style_features: (B, N, H, W) features of the style, used only for the standardisation.
    """

    def __init__(self, style_features: Tensor) -> None:
        super().__init__()
        n = style_features.shape[1]
        self.standardize = _Standardize(style_features)
        self.linear = nn.Conv2d(n, 1, 1)
        self.quadratic = nn.Conv2d(n, n, 1, bias=False)
        for p in (self.linear.weight, cast(Tensor, self.linear.bias), self.quadratic.weight):
            nn.init.zeros_(p)

    def forward(self, features: Tensor) -> Tensor:
        """Logits (B, 1, H, W) for features (B, N, H, W); > 0 means "style"."""
        f = self.standardize(features)
        # f^T A f normalised by N so that the logit's scale does not grow with the layer width
        return self.linear(f) + (f * self.quadratic(f)).sum(dim=1, keepdim=True) / f.shape[1]


class MLPDiscriminator(nn.Module):
    """A one-hidden-layer perceptron on each feature vector: 1x1 conv -> LeakyReLU -> 1x1 conv.

    s(f) = v . LeakyReLU(W f + c) + b with W of shape (hidden, N). Not convex in its parameters
    and not tied to any moment: it can separate distributions with equal mean and covariance.

    Args:
        style_features: (B, N, H, W) features of the style, used only for the standardisation.
        hidden: width of the hidden layer.
        negative_slope: slope of the LeakyReLU for negative inputs.
    """

    def __init__(self, style_features: Tensor, hidden: int = 64, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.standardize = _Standardize(style_features)
        self.net = nn.Sequential(nn.Conv2d(style_features.shape[1], hidden, 1), nn.LeakyReLU(negative_slope),
                                 nn.Conv2d(hidden, 1, 1))

    def forward(self, features: Tensor) -> Tensor:
        """Logits (B, 1, H, W) for features (B, N, H, W); > 0 means "style"."""
        return self.net(self.standardize(features))


DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "logistic": LogisticDiscriminator, "quadratic": QuadraticDiscriminator, "mlp": MLPDiscriminator,
}


def discriminator_loss(style_logits: Tensor, image_logits: Tensor) -> Tensor:
    """Balanced binary cross-entropy, mean softplus(-s(style)) + mean softplus(s(image)).

    Args:
        style_logits: (B, 1, H, W) logits on the style's positions (label 1).
        image_logits: (B', 1, H', W') logits on the synthesis's positions (label 0).

    Returns:
        Scalar; 2 log 2 ~ 1.386 when D outputs 0 everywhere.
    """
    return F.softplus(-style_logits).mean() + F.softplus(image_logits).mean()


def generator_loss(image_logits: Tensor) -> Tensor:
    """Non-saturating generator loss mean_k -log sigma(s_k) = mean_k softplus(-s_k).

    Args:
        image_logits: (B, 1, H, W) logits on the synthesis's positions.

    Returns:
        Scalar; log 2 ~ 0.693 when D outputs 0 everywhere.
    """
    return F.softplus(-image_logits).mean()


def discriminator_accuracy(style_logits: Tensor, image_logits: Tensor) -> Tensor:
    """Balanced accuracy (1/2)(P[s(style) > 0] + P[s(image) < 0]), a tie s = 0 counting 1/2.

    0.5 = cannot tell, 1 = separates every position.
    """
    return 0.25 * (style_logits.sign().mean() - image_logits.sign().mean()) + 0.5


def moment_distances(features: Tensor, style_mean: Tensor, style_cov: Tensor) -> tuple[float, float]:
    """Relative distances ||mu - mu_s|| / ||mu_s|| and ||Sigma - Sigma_s||_F / ||Sigma_s||_F.

    Args:
        features: (1, N, H, W) features of the synthesis.
        style_mean: (1, N) mean of the style's features.
        style_cov: (1, N, N) covariance of the style's features.
    """
    mean, cov = feature_mean(features), feature_covariance(features)
    d_mean = (mean - style_mean).norm() / style_mean.norm().clamp_min(1e-12)
    d_cov = (cov - style_cov).norm() / style_cov.norm().clamp_min(1e-12)
    return float(d_mean), float(d_cov)

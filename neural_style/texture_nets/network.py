"""Feed-forward texture synthesis: Ulyanov et al. 2016, "Texture Networks", with the instance
normalisation of Ulyanov et al. 2017 ("Instance Normalization: The Missing Ingredient for Fast
Stylization") or batch normalisation.

The generator g_theta maps noise to an image in one forward pass. K noise tensors z_1 ... z_K,
z_k of shape (B, 3, H / 2^(k-1), W / 2^(k-1)), each go through a convolution block; from the
coarsest up, the running tensor is upsampled x2 (nearest), normalised and concatenated with the
next finer block's output, and another block joins them. A 1x1 convolution and a sigmoid give
RGB in [0, 1]. For stylization (``GeneratorConfig(content=True)``) each z_k is concatenated with
the content photo downsampled to its size, as in the paper's stylization networks. Every block is conv3x3 - norm - LeakyReLU, conv3x3 - norm - LeakyReLU,
conv1x1 - norm - LeakyReLU with reflection padding; with ``width`` = 8 channels per scale the
joins have 8, 16, ..., 8K channels, as in the paper. The network is fully convolutional, so it
samples at any size (rounded up to a multiple of 2^(K-1), at least twice it, then cropped).

It is trained once, with Adam over theta, on the Gatys loss of its samples under the fixed VGG:

    min_theta  E_z [ sum_l w_l E_l(g_theta(z), a) ],   E_l = 1/(4 N_l^2 M_l^2) sum_ij (G^l - A^l)^2,

each step on a batch of fresh noise; a stylization network adds alpha L_content(g(z, c), c) on
random crops c of a set of photos. The loss of one batch is a noisy estimate, so "best" weights
are those of the step with the lowest batch loss; an interrupted training keeps them
(``training.py``). This module holds the generator and its weights files.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..core.checks import check_image, check_integer, check_seed
from ..core.devices import resolve_device
from ..core.outputs import write_atomically

Norm = Literal["instance", "batch"]
NOISE_CHANNELS = 3
# beta of a stylization network (alpha = 1): at synthesize's 30 the generator, trained on a few
# photos, paints the same Starry Night pattern over every photo (notebook, section 15); at 3 it
# keeps the photo.
STYLIZATION_STYLE_WEIGHT = 3.0


@dataclass(frozen=True)
class GeneratorConfig:
    """What builds a generator: ``scales`` K noise inputs, ``width`` channels per scale, ``norm``,
    and whether each scale also sees a content image (a stylization network)."""

    scales: int = 5
    width: int = 8
    norm: Norm = "instance"
    content: bool = False

    def __post_init__(self) -> None:
        check_integer("scales", self.scales)
        check_integer("width", self.width)
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"Unknown norm {self.norm!r}; choose 'instance' or 'batch'.")


def padded_size(config: GeneratorConfig, size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) the generator actually computes for an image of ``size``: each side rounded up to a
    multiple of 2^(K-1), and at least twice it (reflection padding needs 2 px at the coarsest z_K)."""
    m = 2 ** (config.scales - 1)
    h, w = (max(2, math.ceil(s / m)) * m for s in size)
    return h, w


def generator_elements(config: GeneratorConfig, size: tuple[int, int], *, training: bool) -> int:
    """Activation elements of one image's forward pass at ``size`` (counted at ``padded_size``).

    With P_k = H W / 4^k the pixels of scale k (k = 0 the finest), w = ``width``, c the input's
    channels (3, or 6 with a content image) and K scales, a block (c_in -> c) outputs about
    c_in + 10 c values per pixel (two reflection pads, three convolutions, norms and LeakyReLUs),
    and the join at scale k (j = K - 1 - k scales below it) about (14 j + 12) w (upsample, norm,
    concatenation, block). Training keeps all of them for the backward pass:

        E_train = sum_k P_k (2 c + 10 w) + sum_{k < K-1} P_k (14 (K - 1 - k) + 12) w + 6 P_0

    Sampling (``torch.no_grad``) holds only the tensors of the finest join at once, plus the noise:

        E_sample = P_0 (6 K w + 4 c + 6)
    """
    h, w = padded_size(config, size)
    k_scales, width = config.scales, config.width
    c = NOISE_CHANNELS + (3 if config.content else 0)
    if not training:
        return h * w * (6 * k_scales * width + 4 * c + 6)
    pixels = [(h >> k) * (w >> k) for k in range(k_scales)]
    joins = sum(p * (14 * (k_scales - 1 - k) + 12) * width for k, p in enumerate(pixels[:-1]))
    return sum(pixels) * (2 * c + 10 * width) + joins + 6 * pixels[0]


def _norm(channels: int, norm: Norm) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if norm == "instance" else nn.BatchNorm2d(channels)


def _block(in_channels: int, out_channels: int, norm: Norm) -> nn.Sequential:
    """conv3x3 - norm - LeakyReLU, twice, then conv1x1 - norm - LeakyReLU (reflection padding)."""
    layers: list[nn.Module] = []
    for kernel, channels in ((3, in_channels), (3, out_channels), (1, out_channels)):
        layers += [nn.Conv2d(channels, out_channels, kernel, padding=kernel // 2, padding_mode="reflect"),
                   _norm(out_channels, norm), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class TextureNetwork(nn.Module):
    """The multi-scale generator of Texture Networks (see the module docstring)."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.config = config
        k, width = config.scales, config.width
        in_channels = NOISE_CHANNELS + (3 if config.content else 0)
        self.inputs = nn.ModuleList(_block(in_channels, width, config.norm) for _ in range(k))
        # join j (j = 1 .. K-1, from the coarsest) sees j * width upsampled channels + width new ones
        self.up_norms = nn.ModuleList(_norm(j * width, config.norm) for j in range(1, k))
        self.joins = nn.ModuleList(_block((j + 1) * width, (j + 1) * width, config.norm) for j in range(1, k))
        self.to_rgb = nn.Conv2d(k * width, 3, 1)

    @property
    def multiple(self) -> int:
        """The generated size is rounded up to a multiple of this, 2^(K-1) (at least 2 of them), then cropped."""
        return 2 ** (self.config.scales - 1)

    def noise(self, count: int, size: tuple[int, int], seed: int, device: torch.device | str = "cpu") -> list[Tensor]:
        """z_1 ... z_K for ``count`` samples of ``size`` = (H, W) (``padded_size``), finest first, uniform in [0, 1)."""
        h, w = padded_size(self.config, size)
        generator = torch.Generator().manual_seed(seed)
        return [torch.rand(count, NOISE_CHANNELS, h >> k, w >> k, generator=generator).to(device)
                for k in range(self.config.scales)]

    def forward(self, noise: Sequence[Tensor], content: Tensor | None = None) -> Tensor:
        """Images (B, 3, H, W) in [0, 1] from the noise of ``noise()`` (finest first) and, for a
        stylization network, content images (B, 3, H, W) of the finest noise's size."""
        if self.config.content:
            if content is None or content.shape[-2:] != noise[0].shape[-2:]:
                raise ValueError("A stylization network needs content images of the noise's size.")
            noise = [torch.cat([z, F.interpolate(content, size=z.shape[-2:], mode="area")], dim=1) for z in noise]
        x = self.inputs[-1](noise[-1])
        for j, z in enumerate(reversed(noise[:-1])):
            up = self.up_norms[j](F.interpolate(x, scale_factor=2.0, mode="nearest"))
            x = self.joins[j](torch.cat([up, self.inputs[-2 - j](z)], dim=1))
        return torch.sigmoid(self.to_rgb(x))

    @torch.no_grad()
    def sample(self, size: int | tuple[int, int], *, count: int = 1, seed: int = 0) -> Tensor:
        """``count`` textures (count, 3, H, W) of any ``size`` = (H, W), or an int for a square;
        the same seed gives the same images."""
        if self.config.content:
            raise ValueError("This is a stylization network: call stylize(content).")
        if not isinstance(size, (tuple, list)):
            size = (size, size)  # one number: a square (check_integer refuses what is not an integer)
        if len(size) != 2:
            raise ValueError(f"size must be (height, width) in pixels, or one integer for a square; got {size!r}.")
        h, w = (check_integer(name, s) for name, s in zip(("height", "width"), size))
        return self._generate((h, w), check_integer("count", count), check_seed(seed), None)

    @torch.no_grad()
    def stylize(self, content: Tensor, *, seed: int = 0) -> Tensor:
        """The content image (1, 3, H, W) in [0, 1] in the trained style, (1, 3, H, W)."""
        if not self.config.content:
            raise ValueError("This is a texture network: call sample(size).")
        content = check_image(content, "The content image")
        h, w = content.shape[-2:]
        return self._generate((h, w), 1, check_seed(seed), content)

    def generate(self, noise: Sequence[Tensor], size: tuple[int, int], content: Tensor | None = None) -> Tensor:
        """Images (B, 3, H, W) of exactly ``size`` = (H, W) from ``noise(count, size, ...)``, which is
        rounded up to a multiple of ``multiple``: content images (B, 3, H, W) are padded to the noise's
        size (replicating their edges) and the generated images cropped back, in training as in sampling."""
        if content is not None:
            pad_h, pad_w = noise[0].shape[-2] - size[0], noise[0].shape[-1] - size[1]
            content = F.pad(content.to(noise[0].device), (0, pad_w, 0, pad_h), mode="replicate")
        return self(noise, content)[..., :size[0], :size[1]]

    def _generate(self, size: tuple[int, int], count: int, seed: int, content: Tensor | None) -> Tensor:
        was_training = self.training
        self.eval()
        try:
            return self.generate(self.noise(count, size, seed, next(self.parameters()).device), size, content)
        finally:
            self.train(was_training)


def save_texture_network(network: TextureNetwork, path: str | Path, training: Any = None, *,
                         overwrite: bool = True) -> Path:
    """Write the generator's configuration and state dict with ``torch.save`` and, given the
    ``training`` that made it, its loss history, time and parameters (``read_training``).

    The file is serialised in memory first (a generator is small), then written atomically under a
    unique temporary name (``outputs.write_atomically``): a failed write (a full disk, a read-only
    folder) raises ``OSError`` and leaves no temporary behind and an existing file unchanged.
    ``overwrite=False`` refuses (``FileExistsError``) a file that exists, even one created meanwhile.
    """
    saved: dict = {"config": asdict(network.config), "state_dict": network.state_dict()}
    if training is not None:
        saved["training"] = {"history": training.losses, "best_step": training.best_step,
                             "seconds": training.seconds, "stopped": training.stopped, "params": training.params}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    return write_atomically(Path(path), buffer.getvalue(), overwrite=overwrite)


def read_training(path: str | Path) -> dict:
    """How the generator in ``path`` was trained: ``history``, ``best_step``, ``seconds``, ``stopped``,
    ``params`` (empty when it was saved without its training)."""
    return dict(torch.load(Path(path), map_location="cpu", weights_only=True).get("training", {}))


def load_texture_network(path: str | Path, device: torch.device | str = "cpu") -> TextureNetwork:
    """Read a generator written by ``save_texture_network`` (``torch.load(weights_only=True)``).

    A ``device`` that is not there is refused first (``devices.resolve_device``); weights that are
    not finite are refused after reading (the file was saved from a training that diverged)."""
    device = resolve_device(device)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No texture network at {path}; train one first (train_texture_network).")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        network = TextureNetwork(GeneratorConfig(**saved["config"]))
        network.load_state_dict(saved["state_dict"])
    except Exception as error:  # unpickling, a missing key, a wrong shape: all mean "not our file"
        raise ValueError(f"{path} is not a texture network saved by save_texture_network ({error}).") from None
    broken = [name for name, value in network.state_dict().items() if value.is_floating_point()
              and not torch.isfinite(value).all()]
    if broken:
        raise ValueError(f"{path} holds NaN or infinite weights ({', '.join(broken[:3])}"
                         f"{' ...' if len(broken) > 3 else ''}): the training that saved it diverged; train it "
                         "again (a smaller lr).")
    return network.to(device).eval()

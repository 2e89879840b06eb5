"""Each style layer's share of the style loss and of its gradient at the start of a run, and the
calibration of the default layer weights.

With the network as trained (unnormalised Caffe VGG19) the five Gram losses E_l differ by orders of
magnitude at the start of a run, so equal layer weights are not equal in effect. For each
content/style pair (content "none" = a texture from seeded noise) this prints the unweighted E_l
at the start image, then w_l E_l / sum_k w_k E_k for the paper's equal weights, for 1 / N_l^2 and
for the library's default weights, and the gradient shares ||grad_x w_l E_l|| / sum_k ||...|| of
the default. Last, the geometric mean of E_l over the pairs, E-bar_l, and the weights
w_l = (1 / E-bar_l) / sum_k (1 / E-bar_k) it gives: the calibration ``losses.config`` holds for
this network (``TYPICAL_STYLE_LOSS``).

    python benchmarks/layer_shares.py [--size 512] [CONTENT:STYLE ...]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image  # noqa: E402
from neural_style.losses.config import STYLE_LAYERS, style_layer_weights  # noqa: E402
from neural_style.losses.statistics import get_statistic  # noqa: E402

IMAGES = ROOT / "images"
PAIRS = [f"{IMAGES}/{content}:{IMAGES}/{style}" for content, style in [
    ("chelsea.png", "starry_night.jpg"), ("astronaut.png", "great_wave.jpg"),
    ("coffee.png", "kandinsky_composition_viii.jpg"), ("chelsea.png", "van_gogh_auvers.jpg"),
    ("astronaut.png", "starry_night.jpg"), ("coffee.png", "great_wave.jpg")]] + [
    f"none:{IMAGES}/{style}" for style in ("van_gogh_auvers.jpg", "starry_night.jpg", "brick.png",
                                           "hubble_deep_field.jpg", "kandinsky_composition_viii.jpg")]


def start_losses(net, content: Path | None, style: Path, size: int, weights: list[float],
                 seed: int = 0) -> tuple[list[float], list[float]]:
    """(E_l unweighted, gradient-norm shares of w_l E_l) at the start image (the photo, or noise)."""
    gram = get_statistic("gram")
    style_image = load_image(style, size)
    start = (load_image(content, size) if content is not None else
             torch.rand((1, 3, *style_image.shape[-2:]), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        targets = {layer: gram.describe(f) for layer, f in net(style_image, STYLE_LAYERS).items()}
    x = start.requires_grad_(True)
    features = net(x, STYLE_LAYERS)
    losses, norms = [], []
    for layer, weight in zip(STYLE_LAYERS, weights):
        loss = gram.loss(features[layer], targets[layer])
        grad, = torch.autograd.grad(weight * loss, x, retain_graph=True)
        losses.append(float(loss.detach()))
        norms.append(float(grad.norm()))
    return losses, [v / sum(norms) for v in norms]


def shares(losses: list[float], weights: list[float]) -> list[float]:
    """w_l E_l / sum_k w_k E_k."""
    weighted = [w * e for w, e in zip(weights, losses)]
    return [v / sum(weighted) for v in weighted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="*", default=PAIRS, metavar="CONTENT:STYLE")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    net = load_backbone()
    default = style_layer_weights(net, STYLE_LAYERS, None)
    schemes = {"equal": [1.0] * 5, "1/N^2": [net.channels(layer) ** -2.0 for layer in STYLE_LAYERS],
               "default": default}
    print(f"{net.info.name}, {args.size} px; E_l at the start; shares of sum_l w_l E_l in % "
          f"({' / '.join(STYLE_LAYERS)}); default w_l = {' / '.join(f'{w:.3g}' for w in default)}")
    print("| content x style | E_l | " + " | ".join(f"{name} shares" for name in schemes)
          + " | default, gradient shares | largest / smallest default share |")
    print("| --- | --- |" + " --- |" * (len(schemes) + 2))
    all_losses = []
    for pair in args.pairs:
        content, style = pair.rsplit(":", 1)
        losses, grads = start_losses(net, None if content == "none" else Path(content), Path(style),
                                     args.size, default)
        all_losses.append(losses)
        label = f"{Path(content).stem if content != 'none' else 'noise'} x {Path(style).stem}"
        cells = [" / ".join(f"{100 * s:.2g}" for s in shares(losses, w)) for w in schemes.values()]
        spread = max(shares(losses, default)) / min(shares(losses, default))
        print(f"| {label} | {' / '.join(f'{e:.3g}' for e in losses)} | {' | '.join(cells)} | "
              f"{' / '.join(f'{100 * g:.2g}' for g in grads)} | {spread:.1f} |", flush=True)
    typical = [math.exp(sum(math.log(row[i]) for row in all_losses) / len(all_losses)) for i in range(5)]
    inverse = [1 / e for e in typical]
    print("\nE-bar_l (geometric mean over the pairs): "
          + ", ".join(f'"{layer}": {e:.3g}' for layer, e in zip(STYLE_LAYERS, typical)))
    print("w_l = (1 / E-bar_l) / sum_k (1 / E-bar_k): " + " / ".join(f"{v / sum(inverse):.3g}" for v in inverse))


if __name__ == "__main__":
    main()

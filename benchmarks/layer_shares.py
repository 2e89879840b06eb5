"""Each style layer's share of the paper's style loss and of its gradient, at the start of a run.

With the network as trained (unnormalised Caffe VGG19) the five E_l differ by orders of
magnitude, so "equal" layer weights w_l = 1/5 are not equal in effect. This prints, for each
content/style pair (or texture, content "none" = a noise start), w_l E_l / sum_l w_l E_l and
||grad_x w_l E_l|| / sum_l ||grad_x w_l E_l|| at the start image (the content photo, or noise).

    python benchmarks/layer_shares.py [--size 256] [CONTENT:STYLE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image  # noqa: E402
from neural_style.losses.config import STYLE_LAYERS  # noqa: E402
from neural_style.losses.statistics import get_statistic  # noqa: E402

IMAGES = ROOT / "images"
PAIRS = [f"{IMAGES}/chelsea.png:{IMAGES}/great_wave.jpg", f"{IMAGES}/astronaut.png:{IMAGES}/starry_night.jpg",
         f"{IMAGES}/coffee.png:{IMAGES}/kandinsky_composition_viii.jpg", f"none:{IMAGES}/van_gogh_auvers.jpg",
         f"none:{IMAGES}/brick.png"]


def shares(net, content: Path | None, style: Path, size: int, seed: int = 0) -> tuple[list[float], list[float]]:
    """(loss shares, gradient-norm shares) of the style layers at the start image, w_l = 1/5."""
    gram = get_statistic("gram")
    style_image = load_image(style, size)
    start = (load_image(content, size) if content is not None else
             torch.rand((1, 3, *style_image.shape[-2:]), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        targets = {layer: gram.describe(f) for layer, f in net(style_image, STYLE_LAYERS).items()}
    x = start.requires_grad_(True)
    features = net(x, STYLE_LAYERS)
    losses, norms = [], []
    for layer in STYLE_LAYERS:
        loss = gram.loss(features[layer], targets[layer]) / len(STYLE_LAYERS)
        grad, = torch.autograd.grad(loss, x, retain_graph=True)
        losses.append(float(loss.detach()))
        norms.append(float(grad.norm()))
    return [v / sum(losses) for v in losses], [v / sum(norms) for v in norms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="*", default=PAIRS, metavar="CONTENT:STYLE")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    net = load_backbone()
    print(f"{net.info.name}, {args.size} px, w_l = 1/5; share of sum_l w_l E_l (loss) and of sum_l |grad w_l E_l|")
    print("| content x style | " + " | ".join(f"{l} loss, grad" for l in STYLE_LAYERS) + " |")
    print("| --- |" + " --- |" * len(STYLE_LAYERS))
    for pair in args.pairs:
        content, style = pair.rsplit(":", 1)
        loss, grad = shares(net, None if content == "none" else Path(content), Path(style), args.size)
        label = f"{Path(content).name if content != 'none' else 'noise'} x {Path(style).name}"
        print(f"| {label} | " + " | ".join(f"{a:.1e}, {b:.1e}" for a, b in zip(loss, grad)) + " |", flush=True)


if __name__ == "__main__":
    main()

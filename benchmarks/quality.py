"""How results look, in numbers, for several settings side by side: the yardstick of the defaults.

For every content/style pair (content "none" = a texture) and every named setting, runs
``synthesize`` and reports:

- each style layer's weighted share w_l E_l / sum_k w_k E_k of the style loss at the start and at
  the end of the run (a layer with a share of 1e-4 is effectively absent);
- the total loss of the best image at the full size (the last scale of a coarse-to-fine run);
- the content loss at the end (unweighted, L_content of the run's content layers);
- an independent distribution distance between the result's and the style's features: the
  sliced Wasserstein loss of every style layer with 64 projections fixed by a seed (the same for
  every setting), summed over the layers, so that runs that optimise the Gram matrix and runs
  that optimise something else are measured by one yardstick;
- speckle: the high-frequency energy of the result's chroma (YIQ I and Q minus their 3 x 3 mean,
  mean square) over the style image's at the result's size: 1 = as grainy in colour as the
  painting (a grey style's chroma counts as ``SPECKLE_FLOOR``); classic published results measure
  0.2-2;
- evaluations and seconds.

Each pair gets a sheet (content, style, one result per setting) in ``--out``. A setting is
``NAME`` or ``NAME:key=value,key=value`` with ``synthesize``'s keywords (values parsed as JSON,
else kept as text; ``scales=auto``); ``default`` runs the library's defaults.

    python benchmarks/quality.py --size 256 --steps 200 --out /tmp/quality \\
        --pairs ../shared/images/tubingen.jpg:../shared/images/starry_night.jpg none:images/brick.png \\
        --settings default tv:tv_weight=1e-4 noise:init=noise
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import image_grid, load_backbone, load_image, synthesize  # noqa: E402
from neural_style.core.images import resize  # noqa: E402
from neural_style.losses.wasserstein import SlicedWasserstein  # noqa: E402
from neural_style.synthesis.colour import rgb_to_yiq  # noqa: E402

IMAGES = ROOT / "images"
PAIRS = [f"{IMAGES}/chelsea.png:{IMAGES}/starry_night.jpg", f"{IMAGES}/astronaut.png:{IMAGES}/great_wave.jpg",
         f"none:{IMAGES}/van_gogh_auvers.jpg"]
YARDSTICK = SlicedWasserstein(num_projections=64, seed=1234)
SPECKLE_FLOOR = 1e-5  # a grey style has no chroma: its results are measured against this floor


def parse_setting(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,...`` -> (NAME, keywords); a value may be a JSON list (``layer_weights=[1,2]``)."""
    name, _, rest = text.partition(":")
    keywords: dict[str, Any] = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):
        key, _, value = item.partition("=")
        try:
            keywords[key] = json.loads(value)
        except json.JSONDecodeError:
            keywords[key] = value
    return name, keywords


def chroma_speckle(image: torch.Tensor) -> float:
    """Mean square of the YIQ chroma (I, Q) minus its 3 x 3 local mean: colour noise at the pixel scale."""
    chroma = rgb_to_yiq(image)[:, 1:]
    local = F.avg_pool2d(F.pad(chroma, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float((chroma - local).pow(2).mean())


@torch.no_grad()
def distribution_distance(net: Any, image: torch.Tensor, style: torch.Tensor, layers: list[str]) -> dict[str, float]:
    """The yardstick's sliced Wasserstein loss per style layer between ``image`` and ``style``."""
    mine, theirs = net(image, layers), net(style, layers)
    return {layer: float(YARDSTICK.loss(mine[layer], YARDSTICK.describe(theirs[layer]))) for layer in layers}


def layer_shares(record: dict[str, float], layers: list[str], weights: list[float]) -> list[float]:
    """w_l E_l / sum_k w_k E_k from one history record."""
    weighted = [w * record[f"style/{layer}"] for layer, w in zip(layers, weights)]
    total = sum(weighted) or 1.0
    return [v / total for v in weighted]


def run_pair(net: Any, content_path: str, style_path: str, settings: list[tuple[str, dict[str, Any]]],
             size: int, steps: int, out: Path) -> list[dict[str, Any]]:
    """Every setting on one pair: the table's rows, and the pair's sheet written to ``out``."""
    style = load_image(style_path, size)
    content = None if content_path == "none" else load_image(content_path, size)
    rows, images = [], []
    for name, keywords in settings:
        began = time.perf_counter()
        result = synthesize(net, style=style, content=content, **{"num_steps": steps, **keywords})
        seconds = time.perf_counter() - began
        params = result.params
        layers, weights = params["style_layers"], params["layer_weights"]
        style_at_size = resize(style, tuple(result.image.shape[-2:]))
        distances = distribution_distance(net, result.image, style_at_size, layers)
        best = result.history[result.best_step - 1] if result.best_step else result.history[-1]
        rows.append({"pair": f"{Path(content_path).stem} x {Path(style_path).stem}", "setting": name,
                     "start": layer_shares(result.history[0], layers, weights),
                     "end": layer_shares(best, layers, weights), "loss": result.best_loss, "content": best["content"],
                     "sw": sum(distances.values()), "sw_layers": distances,
                     "speckle": chroma_speckle(result.image) / max(chroma_speckle(style_at_size), SPECKLE_FLOOR),
                     "evaluations": len(result.history), "seconds": seconds, "stopped": result.stopped})
        images.append(result.image)
        result.save(out / f"{Path(content_path).stem}_{Path(style_path).stem}_{name}.png", overwrite=True)
    sheet = [[content, style, *images]] if content is not None else [[style, *images]]
    titles = (["content"] if content is not None else []) + ["style", *(n for n, _ in settings)]
    image_grid(sheet, backbone=str(net.info), col_titles=titles, cell=3.2,
               path=out / f"sheet_{Path(content_path).stem}_{Path(style_path).stem}.png")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table: shares as percentages, losses in 3 significant digits."""
    def pct(values: list[float]) -> str:
        return " / ".join(f"{100 * v:.2g}" for v in values)

    lines = ["| pair | setting | style shares at start, % | at end, % | loss | content | SW distance | speckle | "
             "evaluations | s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['setting']} | {pct(r['start'])} | {pct(r['end'])} | {r['loss']:.3g} | "
                     f"{r['content']:.3g} | {r['sw']:.3g} | {r['speckle']:.2f} | {r['evaluations']} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=PAIRS, metavar="CONTENT:STYLE",
                        help="content and style files; content 'none' makes a texture")
    parser.add_argument("--settings", nargs="+", default=["default"], metavar="NAME[:k=v,...]")
    parser.add_argument("--size", type=int, default=256, help="long side in px (default: 256)")
    parser.add_argument("--steps", type=int, default=200, help="evaluations per run (default: 200)")
    parser.add_argument("--backbone", default="vgg19")
    parser.add_argument("--out", type=Path, default=Path("quality"), help="folder of the sheets and the table")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    net = load_backbone(args.backbone)
    settings = [parse_setting(s) for s in args.settings]
    print(f"# {net.info.name} ({net.info.source}), {args.size} px, {args.steps} evaluations, "
          f"SW yardstick: {YARDSTICK.num_projections} projections, seed {YARDSTICK.seed}")
    rows: list[dict[str, Any]] = []
    for pair in args.pairs:
        content, _, style = pair.rpartition(":")
        rows += run_pair(net, content, style, settings, args.size, args.steps, args.out)
        print(table(rows), flush=True)
    (args.out / "quality.md").write_text(table(rows) + "\n")
    (args.out / "quality.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

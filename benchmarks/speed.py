"""Speed and memory of the fast defaults against the naive baseline, measured in one run.

    python benchmarks/speed.py                 # the full benchmark (about 20 min on 2 CPU cores)
    python benchmarks/speed.py --quick         # a smoke run with tiny sizes (seconds)

Baseline: the paper's procedure as the classic programs run it: one scale, float32, L-BFGS,
500 loss evaluations at 512 px. Fast: ``synthesize``'s defaults (bf16 autocast where the
hardware has it, channels-last) with the same budget. Coarse-to-fine: the fast defaults with
``scales="auto"``, the same number of evaluations spread over 128, 256 and 512 px. Every result
is scored the same way: the float32 loss at full resolution with the same layers and weights.
Every run happens in a subprocess of its own, so each peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image, save_image  # noqa: E402
from neural_style.core.devices import autocast_dtype, prepare_for_speed, resolve_device  # noqa: E402
from neural_style.losses.config import PAPER  # noqa: E402
from neural_style.synthesis.objective import Objective
from neural_style.synthesis.run import synthesize  # noqa: E402

CONTENT, STYLE = ROOT / "images" / "astronaut.png", ROOT / "images" / "starry_night.jpg"


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def fp32_loss(net, image: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    """The paper's loss of ``image`` in float32 at full resolution: total, style and content."""
    objective = Objective.from_images(net, PAPER, styles=[style], content=content)
    with torch.no_grad():
        terms = objective(image.to(content.device))
    return {k: float(terms[k]) for k in ("total", "style", "content")}


def job_pass(args: argparse.Namespace) -> dict:
    """Median seconds of one evaluation of the paper's loss with its gradient w.r.t. the image."""
    net = load_backbone(args.backbone, device=resolve_device(args.device))
    device = next(net.parameters()).device
    prepare_for_speed(net)
    content, style = load_image(CONTENT, args.size).to(device), load_image(STYLE, args.size).to(device)
    dtype = autocast_dtype(device, "auto") if args.mode == "fast" else None
    objective = Objective.from_images(net, PAPER, styles=[style], content=content, autocast=dtype)
    times = []
    for _ in range(args.repeats + 1):  # the first evaluation warms up and is dropped
        x = content.clone().requires_grad_(True)
        start = time.perf_counter()
        objective(x)["total"].backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times[1:]), "peak_rss_gb": peak_rss_gb()}


def job_run(args: argparse.Namespace) -> dict:
    """One complete stylization at ``args.size``; returns its time, fp32 loss and peak RSS."""
    warnings.simplefilter("ignore")
    net = load_backbone(args.backbone, device=resolve_device(args.device))
    content, style = load_image(CONTENT, args.size), load_image(STYLE, args.size)
    if args.mode == "baseline":
        options = dict(precision="fp32", scales="single", num_steps=args.steps)
    elif args.mode == "memory":
        options = dict(scales=[(args.size, args.steps)])
    elif args.mode == "coarse-to-fine":
        options = dict(scales="auto", num_steps=args.steps)
    else:
        options = dict(num_steps=args.steps)
    start = time.perf_counter()
    result = synthesize(net, content=content, style=style, **options)
    seconds = time.perf_counter() - start
    device = next(net.parameters()).device
    loss = fp32_loss(net, result.image, content.to(device), style.to(device))
    if args.save:
        save_image(result.image, args.save, {**result.params, "benchmark": args.mode}, overwrite=True)
    return {"seconds": seconds, "loss": loss, "peak_rss_gb": peak_rss_gb(), "evaluations": len(result.history),
            "precision": result.params["precision"], "scales": result.params["scales"]}


def spawn(**options) -> dict:
    """Run one job in a fresh interpreter and return its JSON answer."""
    argv = [sys.executable, __file__, "--job"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"benchmark job failed: {' '.join(argv)}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets, to check the script runs")
    parser.add_argument("--size", type=int, default=512, help="long side of the stylization (default 512)")
    parser.add_argument("--steps", type=int, default=500, help="loss evaluations of every run (default 500)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[512, 1024, 2048])
    parser.add_argument("--backbone", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="folder for the two result images (optional)")
    # internal: one measurement in a subprocess
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--save", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job_pass(args) if args.kind == "pass" else job_run(args)))
        return
    if args.quick:
        args.size, args.steps, args.memory_sizes = 64, 10, [64]
    common = dict(backbone=args.backbone, device=args.device)
    device = resolve_device(args.device)
    print(f"# machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}, fast precision {autocast_dtype(device, 'auto') or 'fp32'}")

    print("\n## seconds per evaluation: the loss (Gram, conv1_1 ... conv5_1; content conv4_2) and its gradient")
    print("| size | fp32 | fast (bf16 network, fp32 statistics) | speed-up |")
    print("| --- | --- | --- | --- |")
    for size in sorted({args.size // 2, args.size}):
        t = {mode: spawn(kind="pass", mode=mode, size=size, **common)["seconds"] for mode in ("fp32", "fast")}
        print(f"| {size} px | {t['fp32']:.3f} | {t['fast']:.3f} | {t['fp32'] / t['fast']:.1f}x |", flush=True)

    print(f"\n## a finished {args.size} px stylization ({CONTENT.name} x {STYLE.name})")
    out = Path(args.out) if args.out else None
    runs = {}
    for mode in ("baseline", "fast", "coarse-to-fine"):
        save = str(out / f"benchmark_{mode}_{args.size}.png") if out else ""
        runs[mode] = spawn(kind="run", mode=mode, size=args.size, steps=args.steps, save=save, **common)
    print("| run | evaluations | precision | scales (long side, evaluations) | wall time | fp32 loss | "
          "style | content | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, r in runs.items():
        scales = ", ".join(f"{s}:{n}" for s, n in r["scales"])
        print(f"| {mode} | {r['evaluations']} | {r['precision']} | {scales} | {r['seconds']:.1f} s | "
              f"{r['loss']['total']:.4g} | {r['loss']['style']:.4g} | {r['loss']['content']:.4g} | "
              f"{r['peak_rss_gb']:.2f} GB |", flush=True)

    print("\n## peak RSS of the fast path (two evaluations at full size)")
    print("| size | peak RSS |")
    print("| --- | --- |")
    for size in args.memory_sizes:
        r = spawn(kind="run", mode="memory", size=size, steps=2, **common)
        print(f"| {size} px | {r['peak_rss_gb']:.2f} GB |", flush=True)

    base = runs["baseline"]
    print()
    for mode in ("coarse-to-fine", "fast"):
        speedup = base["seconds"] / runs[mode]["seconds"]
        ratio = runs[mode]["loss"]["total"] / base["loss"]["total"]
        print(f"{mode}: speed-up {speedup:.1f}x ({base['seconds']:.0f} s -> {runs[mode]['seconds']:.0f} s), "
              f"loss ratio {ratio:.3f} against the baseline (fp32 loss at {args.size} px)")


if __name__ == "__main__":
    main()

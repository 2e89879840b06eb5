"""The device L-BFGS-B (``optimizer="lbfgs"``, the default) against scipy's L-BFGS-B, measured in one run.

    python benchmarks/optimiser.py                        # parity: 5 cases, 128 px, fp32, CPU
    python benchmarks/optimiser.py --quick                # a smoke run (tiny sizes, seconds)
    python benchmarks/optimiser.py --timing --device cuda --size 512 --evals 500    # GPU timing

Parity (the default): three stylizations and two textures (one with a black background, the
Hubble deep field) from ``images/``, run by ``synthesize`` at its defaults except
``precision="fp32"`` and the optimizer. The loss after N evaluations is the lowest loss among
the first N (the loss of the image a run of N evaluations returns; a run's first N evaluations
do not depend on its budget, so one run of max(N) evaluations gives every N). A ratio below 1
means the device optimiser reached a lower loss. Each run's wall time is printed too.

Two runs of one optimiser part ways after a few dozen iterations when their arithmetic differs
in the last bits, so a ratio at one N carries noise of its own (scipy against itself from a start
moved by 5e-7 per pixel: 0.93 to 1.07 on the textures at 150 and 500 evaluations). So each
optimiser runs from ``--starts`` starts, the run's own and starts moved by at most 5e-7 per pixel
(a few float32 units in the last place, other seeds); the table gives the geometric mean of the
losses over the starts, their ratio, the range of the per-start ratios, and scipy's own spread
(its largest loss over its smallest).

Timing (``--timing``): one stylization at ``--size`` on ``--device``, our default against
``scipy-lbfgsb`` at an equal number of evaluations (the same precision, ``synthesize``'s
default), after a short warm-up run; for each: wall time, seconds per evaluation, the network's
own time per evaluation (forward and backward alone) and the final image's float32 loss.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image  # noqa: E402
from neural_style.core.devices import autocast_dtype, prepare_for_speed, resolve_device  # noqa: E402
from neural_style.losses.config import PAPER  # noqa: E402
from neural_style.synthesis.objective import Objective
from neural_style.synthesis.run import synthesize  # noqa: E402

IMAGES = ROOT / "images"
CASES = (  # (name, content or None for a texture, style)
    ("chelsea x starry_night", "chelsea.png", "starry_night.jpg"),
    ("astronaut x great_wave", "astronaut.png", "great_wave.jpg"),
    ("coffee x kandinsky", "coffee.png", "kandinsky_composition_viii.jpg"),
    ("texture brick", None, "brick.png"),
    ("texture hubble", None, "hubble_deep_field.jpg"),
)
OURS, SCIPY = "lbfgs", "scipy-lbfgsb"


def _images(content: str | None, style: str, size: int) -> dict:
    images = {"style": load_image(IMAGES / style, size)}
    if content is not None:
        images["content"] = load_image(IMAGES / content, size)
    return images


def _nudged_start(images: dict, seed: int) -> torch.Tensor:
    """The run's start (the content, or synthesize's seed-0 noise) moved by up to 5e-7 per pixel."""
    content = images.get("content")
    shape = (content if content is not None else images["style"]).shape
    start = content.clone() if content is not None else torch.rand(shape, generator=torch.Generator().manual_seed(0))
    return (start + 1e-6 * (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) - 0.5)).clamp(0, 1)


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def _run(net, images: dict, optimizer: str, evals: int, **keywords) -> tuple[list[float], float, object]:
    """One ``synthesize`` run: the loss of every evaluation, the wall time and the result."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = synthesize(net, num_steps=evals, optimizer=optimizer, seed=0, **images, **keywords)
    seconds = time.perf_counter() - start
    return [h["total"] for h in result.history], seconds, result


def _best_after(losses: list[float], n: int) -> float:
    return min(losses[:n])


def parity(args: argparse.Namespace) -> None:
    net = load_backbone(args.backbone, device=resolve_device(args.device))
    evals = sorted(args.evals)
    cases = CASES[:2] + CASES[3:] if args.quick else CASES
    print(f"# parity: {net.info.name}, {args.size} px, fp32, device {args.device}, evaluations {evals}")
    rows, times = [], []
    for name, content, style in cases:
        images = _images(content, style, args.size)
        runs: dict[str, list[list[float]]] = {OURS: [], SCIPY: []}
        seconds = {OURS: 0.0, SCIPY: 0.0}
        notes = []
        for start in range(args.starts):
            init = {} if start == 0 else {"init": _nudged_start(images, start)}
            for optimizer in (OURS, SCIPY):
                losses, took, result = _run(net, images, optimizer, evals[-1], precision="fp32", **init)
                runs[optimizer].append(losses)
                seconds[optimizer] += took
                if result.stopped:
                    notes.append(f"{optimizer} (start {start}): {result.stopped}")
        for n in evals:
            ours = [_best_after(losses, n) for losses in runs[OURS]]
            ref = [_best_after(losses, n) for losses in runs[SCIPY]]
            pairs = [a / b for a, b in zip(ours, ref)]
            rows.append((name, n, _geomean(ours), _geomean(ref), _geomean(ours) / _geomean(ref),
                         min(pairs), max(pairs), max(ref) / min(ref)))
        times.append((name, seconds[OURS], seconds[SCIPY], "; ".join(notes)))
        print(f"  done: {name} ({seconds[OURS]:.1f} s, {seconds[SCIPY]:.1f} s)", flush=True)
    print(f"\nloss after N evaluations, geometric mean over {args.starts} start(s)")
    print(f"{'case':<24} {'evals':>5} {'lbfgs':>12} {'scipy-lbfgsb':>12} {'ratio':>7} {'per start':>13} "
          f"{'scipy spread':>12}")
    for name, n, a, b, ratio, low, high, spread in rows:
        print(f"{name:<24} {n:>5} {a:>12.5g} {b:>12.5g} {ratio:>7.3f} {low:>6.3f}-{high:<6.3f} {spread:>12.3f}")
    worst, above = max(r[4] for r in rows), [r for r in rows if r[4] > 1.05]
    print(f"worst ratio {worst:.3f}: " + ("within 5% of scipy or lower on every case" if not above else
          f"{len(above)} of {len(rows)} above 1.05 ({', '.join(f'{r[0]} at {r[1]}: {r[4]:.3f}' for r in above)})"))
    print(f"\nwall time of all {args.starts} run(s) per optimizer, {evals[-1]} evaluations each")
    print(f"{'case':<24} {'lbfgs s':>8} {'scipy s':>8} {'time ratio':>10}  early stops")
    for name, a, b, note in times:
        print(f"{name:<24} {a:>8.1f} {b:>8.1f} {a / b:>10.3f}  {note or '-'}")
    total_a, total_b = sum(t[1] for t in times), sum(t[2] for t in times)
    print(f"{'all cases':<24} {total_a:>8.1f} {total_b:>8.1f} {total_a / total_b:>10.3f}")


def _fp32_loss(net, image: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """The paper's float32 loss of ``image`` (Gram, equal layer weights, alpha 1, beta 1e3)."""
    objective = Objective.from_images(net, PAPER, styles=[style], content=content)
    with torch.no_grad():
        return float(objective(image.to(content.device))["total"])


def _network_seconds(net, images: dict, repeats: int = 10) -> float:
    """Median time of one forward and backward of the default objective (no optimiser)."""
    device = next(net.parameters()).device
    prepare_for_speed(net)
    content, style = images["content"].to(device), images["style"].to(device)
    objective = Objective.from_images(net, PAPER, styles=[style], content=content,
                                      autocast=autocast_dtype(device, "auto"))
    times = []
    for _ in range(repeats + 1):
        x = content.clone().requires_grad_(True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.autograd.grad(objective(x)["total"], x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def timing(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    net = load_backbone(args.backbone, device=device)
    name, content, style = CASES[0]
    images = _images(content, style, args.size)
    n = max(args.evals)
    print(f"# timing: {name}, {net.info.name}, {args.size} px, {n} evaluations, device {device}"
          f" ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()})")
    _run(net, images, OURS, 5)  # warm-up: CUDA context, cuDNN autotuning
    network = _network_seconds(net, images)
    rows = []
    for optimizer in (OURS, SCIPY):
        losses, seconds, result = _run(net, images, optimizer, n)
        fp32 = _fp32_loss(net, result.image, images["content"].to(device), images["style"].to(device))
        rows.append((optimizer, len(losses), seconds, seconds / len(losses), fp32, result.stopped))
        print(f"  done: {optimizer} ({seconds:.1f} s)", flush=True)
    print(f"\nnetwork alone (forward + backward, {result.params['precision']}): {network * 1e3:.2f} ms/evaluation")
    print(f"{'optimizer':<14} {'evals':>5} {'seconds':>8} {'ms/eval':>8} {'overhead':>9} {'fp32 loss':>12}  early stop")
    for optimizer, count, seconds, per, fp32, stopped in rows:
        print(f"{optimizer:<14} {count:>5} {seconds:>8.2f} {per * 1e3:>8.2f} {per / network:>8.2f}x "
              f"{fp32:>12.5g}  {stopped or '-'}")
    (_, _, s_ours, _, l_ours, _), (_, _, s_ref, _, l_ref, _) = rows
    print(f"lbfgs / scipy-lbfgsb: time {s_ours / s_ref:.3f} (speed-up {s_ref / s_ours:.2f}x), "
          f"fp32 loss {l_ours / l_ref:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=None, help="long side in px (parity 128, timing 512)")
    parser.add_argument("--evals", type=int, nargs="+", default=None,
                        help="evaluation counts (parity 50 150 500; timing uses the largest, default 500)")
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (parity cpu, timing auto)")
    parser.add_argument("--backbone", default="auto", help="load_backbone's name (default: auto)")
    parser.add_argument("--timing", action="store_true", help="time our default against scipy-lbfgsb")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, few evaluations")
    parser.add_argument("--starts", type=int, default=3, help="parity: starts per optimizer and case (default 3)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.evals = args.size or 48, args.evals or [5, 10]
    args.size = args.size or (512 if args.timing else 128)
    args.evals = args.evals or ([500] if args.timing else [50, 150, 500])
    args.device = args.device or ("auto" if args.timing else "cpu")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, "
          f"load average {load:.2f} at the start")
    (timing if args.timing else parity)(args)
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

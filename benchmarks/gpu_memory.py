"""Peak GPU memory of a stylization at several sizes, against the estimate that guards every run.

Each measurement runs in a fresh process (so the caching allocator starts empty): the paper's
stylization (chelsea x Starry Night, the default network and settings) for a few evaluations at
one size, with cuDNN's autotuner off (``synthesize`` leaves it off) or on, and reports
``torch.cuda.max_memory_allocated`` (tensors), ``max_memory_reserved`` (what the allocator took
from the driver) and ``memory.estimate_bytes`` for the same run.

    python benchmarks/gpu_memory.py [--sizes 512 1024 2048] [--evals 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, warnings
import torch
sys.path.insert(0, sys.argv[1])
from neural_style import load_backbone, load_image, synthesize
from neural_style.synthesis import memory
from neural_style.synthesis import run as synthesis
size, evals, benchmark = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
torch.backends.cudnn.benchmark = benchmark
warnings.simplefilter("ignore")
net = load_backbone(device="cuda")
images = sys.argv[1] + "/images/"
content = load_image(images + "chelsea.png", size).cuda()
style = load_image(images + "starry_night.jpg", size).cuda()
torch.cuda.synchronize()
loaded = torch.cuda.memory_allocated()
torch.cuda.reset_peak_memory_stats()
result = synthesize(net, content=content, style=style, num_steps=evals)
torch.cuda.synchronize()
layers = [*synthesis.STYLE_LAYERS, *synthesis.CONTENT_LAYERS]
precision = result.params["precision"]
element = 2 if precision in ("bfloat16", "float16") else 4
estimate = memory.estimate_bytes(net, tuple(content.shape[-2:]), layers, element_size=element,
                                 optimizer=result.params["optimizer"])
print(json.dumps({"size": list(content.shape[-2:]), "benchmark": benchmark, "precision": precision,
                  "evaluations": len(result.history), "seconds": result.seconds,
                  "allocated": torch.cuda.max_memory_allocated() - loaded,
                  "reserved": torch.cuda.max_memory_reserved(), "estimate": estimate}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--evals", type=int, default=10)
    args = parser.parse_args()
    gib = 2**30
    print("| size | cudnn.benchmark | precision | peak allocated | peak reserved | estimate | s/evaluation |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        for benchmark in ("0", "1"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(size), str(args.evals), benchmark],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {size} | {benchmark} | failed: {out.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {r['size'][0]}x{r['size'][1]} | {r['benchmark']} | {r['precision']} | "
                  f"{r['allocated'] / gib:.2f} GiB | {r['reserved'] / gib:.2f} GiB | {r['estimate'] / gib:.2f} GiB | "
                  f"{r['seconds'] / r['evaluations']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""Tests of the run machinery (neural_style.optim.run) and the device L-BFGS-B (neural_style.optim.lbfgsb).

References are independent of the code under test: scipy's L-BFGS-B and its MINPACK-2 line search,
a dense BFGS matrix built by the textbook recursion, the Cauchy point found by walking the
breakpoints one by one in float64, and the KKT conditions of a box-constrained quadratic.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch
from scipy.optimize._dcsrch import DCSRCH

from neural_style.core.images import load_image
from neural_style.net.loading import load_backbone
from neural_style.optim import lbfgsb
from neural_style.optim.line_search import MoreThuente
from neural_style.optim.optimizers import OPTIMIZERS, optimise
from neural_style.optim.record import Stop
from neural_style.synthesis.objective import style_distance
from neural_style.synthesis.run import synthesize

IMAGES = Path(__file__).resolve().parent.parent / "images"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class Quadratic:
    """f(x) = 1/2 (x - c)^T H (x - c) over x in [0, 1]^n, H SPD, c partly outside the box."""

    def __init__(self, n: int = 60, seed: int = 0, dtype: torch.dtype = torch.float64, device: str = "cpu"):
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(n, n, generator=g, dtype=torch.float64)
        self.h = (a @ a.T / n + 0.05 * torch.eye(n, dtype=torch.float64)).to(dtype).to(device)
        self.c = (torch.randn(n, generator=g, dtype=torch.float64) * 0.9 + 0.5).to(dtype).to(device)
        self.points: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.points.append(x.detach().clone())
        r = x.reshape(-1) - self.c
        return {"total": 0.5 * r @ self.h @ r}

    def numpy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        h, c = self.h.cpu().double().numpy(), self.c.cpu().double().numpy()
        g = h @ (x - c)
        return 0.5 * (x - c) @ g, g


def _evaluator(objective, budget=10**6):
    """A minimal lbfgsb.Evaluate over a Quadratic, raising StopIteration past the budget."""
    calls = []

    def evaluate(point, extra=None):
        if len(calls) >= budget:
            raise StopIteration
        x = point.detach().to(objective.h.dtype).requires_grad_(True)
        total = objective(x)["total"]
        (grad,) = torch.autograd.grad(total, x)
        calls.append(float(total.detach()))
        return calls[-1], grad, [] if extra is None else extra(point, grad.to(point.dtype)).tolist()

    return evaluate, calls


def _scipy_losses(quad: Quadratic, x0: np.ndarray, evals: int, m: int) -> list[float]:
    losses = []

    def fun(x):
        f, g = quad.numpy(x)
        losses.append(f)
        return f, g

    scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(0, 1)] * len(x0),
                            options={"maxcor": m, "maxfun": evals, "maxiter": evals, "ftol": 0.0, "gtol": 0.0})
    return losses


# ------------------------------------------------------------------------------------------------
# The line search


def test_more_thuente_takes_the_steps_of_minpack():
    """The trial steps and the accepted step of scipy's DCSRCH, on 300 random quartics."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        c = rng.normal(size=5)
        c[1], c[4] = -abs(c[1]) - 0.1, abs(c[4]) + 0.01  # descent at 0, bounded below
        scale = 10 ** rng.uniform(-2, 2)
        phi = lambda a: float(np.polyval(c[::-1], a * scale))  # noqa: E731
        dphi = lambda a: float(np.polyval(np.polyder(c[::-1]), a * scale) * scale)  # noqa: E731
        stp = 10 ** rng.uniform(-2, 1)
        stpmax = max(stp, 10 ** rng.uniform(0, 2))
        theirs = []
        search = DCSRCH(lambda a: theirs.append(a) or phi(a), dphi, 1e-3, 0.9, 0.1, 0.0, stpmax)
        accepted, *_ = search(stp, phi0=phi(0), derphi0=dphi(0), maxiter=30)
        ours, mine = [], MoreThuente(phi(0), dphi(0), stp, stpmax=stpmax)
        for _ in range(30):
            ours.append(mine.stp)
            if mine.update(phi(mine.stp), dphi(mine.stp)) != "evaluate":
                break
        assert len(ours) == len(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)  # equal up to the order of operations
        assert accepted is None or mine.stp == pytest.approx(accepted, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# The compact matrix and the Cauchy point against dense references


def _memory(n: int, m: int):
    return lbfgsb._Memory(n, m, storage=torch.float64, small=torch.float64, device=torch.device("cpu"))


def _memory_with_pairs(n: int, m: int, pairs: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, n, generator=g, dtype=torch.float64)
    h = h @ h.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    mem = _memory(n, m)
    s_all, y_all = [], []
    for _ in range(pairs):
        s = torch.randn(n, generator=g, dtype=torch.float64)
        y = h @ s
        mem.push(s, y, float(s @ y))
        s_all.append(s), y_all.append(y)
    return mem, s_all[-m:], y_all[-m:]


def _dense_bfgs(s_list, y_list) -> torch.Tensor:
    """B by the BFGS recursion from B_0 = theta I, theta = y^T y / s^T y of the newest pair."""
    theta = float(y_list[-1] @ y_list[-1] / (s_list[-1] @ y_list[-1]))
    b = theta * torch.eye(len(s_list[0]), dtype=torch.float64)
    for s, y in zip(s_list, y_list):
        bs = b @ s
        b = b - torch.outer(bs, bs) / (s @ bs) + torch.outer(y, y) / (y @ s)
    return b


@pytest.mark.parametrize("pairs", [3, 5, 8])  # 8 pairs in 5 slots: the ring has wrapped around
def test_compact_matrix_equals_the_bfgs_recursion(pairs):
    m, n = 5, 12
    mem, s_list, y_list = _memory_with_pairs(n, m, pairs)
    mid, nmat, ok = mem.middle()
    assert bool(ok)
    w = (mem.w * mem.scale()[:, None]).T  # (n, 2m)
    compact = mem.theta * torch.eye(n, dtype=torch.float64) - w @ mid @ w.T
    assert torch.allclose(compact, _dense_bfgs(s_list, y_list), rtol=1e-9, atol=1e-9)
    k = mem.col
    used = lbfgsb._used(mid, k, m) @ lbfgsb._used(nmat, k, m)
    assert torch.allclose(used, torch.eye(2 * k, dtype=torch.float64), atol=1e-9)


def _sequential_cauchy(x, g, b, lo=0.0, hi=1.0):
    """The first local minimiser of g^T z + z^T B z / 2 along P(x - t g), breakpoint by breakpoint."""
    d = torch.where(((x <= lo) & (g >= 0)) | ((x >= hi) & (g <= 0)), 0.0, -g)
    t_break = torch.where(d > 0, (hi - x) / d, torch.where(d < 0, (lo - x) / d, math.inf))
    z, t0 = torch.zeros_like(x), 0.0
    for i in [int(i) for i in torch.argsort(t_break)] + [None]:
        t1 = math.inf if i is None else float(t_break[i])
        slope = float(g @ d + z @ b @ d)
        curve = float(d @ b @ d)
        if slope >= 0:
            return x + z
        if curve > 0 and -slope / curve < t1 - t0:
            return x + z - slope / curve * d
        if i is None:
            return x + z
        z = z + (t1 - t0) * d
        d[i] = 0.0
        t0 = t1
    return x + z


@pytest.mark.parametrize("host_checks", [True, False])
@pytest.mark.parametrize("pairs", [0, 4])
def test_cauchy_point_matches_the_breakpoint_walk(pairs, host_checks, monkeypatch):
    monkeypatch.setattr(lbfgsb, "FIRST_BLOCK", 40)  # small blocks, so that x^c lies in the first
    monkeypatch.setattr(lbfgsb, "CHUNK", 64)        # block, in a later one, or past all breakpoints
    monkeypatch.setattr(lbfgsb, "CHUNK_ALL", 64)
    n, m = 400, 4
    g = torch.Generator().manual_seed(3)
    if pairs:
        mem, s_list, y_list = _memory_with_pairs(n, m, pairs, seed=3)
        b = _dense_bfgs(s_list, y_list)
    else:
        mem, b = _memory(n, m), torch.eye(n, dtype=torch.float64)
    for scale in (1e-3, 0.3, 30.0):  # a few breakpoints passed, more, all of them
        x = torch.rand(n, generator=g, dtype=torch.float64)
        x[:40], x[40:80] = 0.0, 1.0  # some variables at their bounds
        grad = torch.randn(n, generator=g, dtype=torch.float64) * scale
        mid, _, _ = mem.middle()
        xcp, free, c = lbfgsb._cauchy_point(x, grad, mem, mid, 0.0, 1.0, host_checks=host_checks)
        assert torch.allclose(xcp, _sequential_cauchy(x, grad, b), atol=1e-9)
        at_start = ((x == 0) & (grad >= 0)) | ((x == 1) & (grad <= 0))
        assert free[(xcp > 0) & (xcp < 1)].all() and not free[at_start].any()
        w = (mem.w * mem.scale()[:, None]).T
        assert torch.allclose(c, w.T @ (xcp - x), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Whole runs on a box-constrained quadratic


def test_iterates_follow_scipy_and_stay_in_the_box():
    """In float64 the iterates are scipy's: the same losses, evaluation by evaluation; every
    evaluated point is in [0, 1] although the unconstrained minimiser is not."""
    quad = Quadratic(n=60)
    assert ((quad.c < 0) | (quad.c > 1)).sum() > 10
    x0 = torch.full((60,), 0.5, dtype=torch.float64)
    evaluate, ours = _evaluator(quad, budget=40)
    try:
        lbfgsb.minimize_lbfgsb(evaluate, x0, history_size=5)
    except StopIteration:
        pass
    theirs = _scipy_losses(quad, x0.numpy(), 40, m=5)
    assert len(ours) >= 25 and len(theirs) >= 25
    k = min(len(ours), len(theirs))
    np.testing.assert_allclose(ours[:k], theirs[:k], rtol=1e-8)
    assert all(float(p.min()) >= 0 and float(p.max()) <= 1 for p in quad.points)


@pytest.mark.parametrize("host_checks", [True, False])
def test_converges_to_the_constrained_minimum_in_float32(host_checks, monkeypatch):
    """KKT at the result, to float32's resolution: the projected gradient is 4.5e-4 where the loss
    (26.3) stops resolving the decrease of a step (scipy's L-BFGS-B on the same float32 function
    stops at 6.5e-4), and the loss is the exact optimum's to 1e-7."""
    monkeypatch.setattr(lbfgsb, "CHUNK", 64)  # several blocks in every chunked loop
    monkeypatch.setattr(lbfgsb, "CHUNK_ALL", 64)
    quad = Quadratic(n=200, seed=1, dtype=torch.float32)
    evaluate, losses = _evaluator(quad, budget=500)
    end = lbfgsb.minimize_lbfgsb(evaluate, torch.full((200,), 0.5), host_checks=host_checks)
    assert end.reason == "converged" and len(losses) < 100
    x = quad.points[int(np.argmin(losses))].reshape(-1).double()
    grad = quad.h.double() @ (x - quad.c.double())
    assert float(lbfgsb.projected_gradient_norm(x, grad, 0.0, 1.0)) < 1e-3
    exact = scipy.optimize.minimize(quad.numpy, np.full(200, 0.5), jac=True, method="L-BFGS-B",
                                    bounds=[(0, 1)] * 200, options={"ftol": 0, "gtol": 1e-12, "maxiter": 5000})
    assert min(losses) == pytest.approx(exact.fun, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# optimise(): the record, the budget, the stops


def _run(objective, optimizer="lbfgs", num_steps=50, x0=None, **kwargs):
    history = []
    image = torch.full((1, 3, 4, 5), 0.5) if x0 is None else x0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = optimise(objective, image, optimizer=optimizer, num_steps=num_steps, history=history, **kwargs)
    return out, history


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("budget", [1, 7, 23])
def test_budget_is_never_exceeded_and_reported(optimizer, budget):
    quad = Quadratic(n=60, seed=2, dtype=torch.float32)
    out, history = _run(quad, optimizer, num_steps=budget)
    assert len(history) == len(quad.points) <= budget
    assert out.stop == Stop("budget") or out.stop.kind == "converged"
    if out.stop.kind == "budget":
        assert len(history) == budget and out.stop.message == ""
    assert 1 <= out.best_step <= len(history)
    assert history[out.best_step - 1]["total"] == min(h["total"] for h in history)
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1


@pytest.mark.parametrize("optimizer", ["lbfgs", "scipy-lbfgsb"])
def test_convergence_is_reported_as_such(optimizer):
    quad = Quadratic(n=60, seed=2, dtype=torch.float32)
    out, history = _run(quad, optimizer, num_steps=1000)
    assert out.stop.kind == "converged" and out.stop.early and not out.stop.breaks
    assert out.stop.message.startswith("converged") and str(len(history)) in out.stop.message
    assert len(history) < 200


def test_callback_and_non_finite_stops():
    quad = Quadratic(n=60, seed=2, dtype=torch.float32)
    out, history = _run(quad, callback=lambda info: info.step == 4)
    assert out.stop == Stop("callback", "stopped by the callback") and len(history) == 4

    quad = Quadratic(n=60, seed=2, dtype=torch.float32)

    def poisoned(x):
        terms = quad(x)
        return {"total": terms["total"] * (math.nan if len(quad.points) == 6 else 1.0)}

    out, history = _run(poisoned)
    assert out.stop.kind == "not_finite" and "evaluation 6" in out.stop.message and len(history) == 5
    assert out.best_step <= 5 and torch.isfinite(out.image).all()


def test_wrong_gradient_ends_in_a_failed_line_search():
    """With the gradient's sign flipped no step decreases the loss: the line search gives up (20
    evaluations, or its interval shrinks below xtol), the memory is empty, so the run ends."""

    class Flipped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return -grad

    quad = Quadratic(n=60, seed=2, dtype=torch.float32)
    out, history = _run(lambda x: quad(Flipped.apply(x)), num_steps=100)
    assert out.stop.kind == "line_search" and out.stop.message.startswith("line search failed")
    assert 2 <= len(history) <= 21 and out.best_step == 1


# ------------------------------------------------------------------------------------------------
# A real synthesis


@pytest.mark.parametrize("content", [False, True])
def test_synthesis_loss_falls_as_with_scipy(content):
    """Random VGG19 at 40 px, fp32, 40 evaluations: within 5% of scipy's loss (measured ratios 1.016
    for the brick texture, 0.996 for the stylization), and the style distance under the mean and
    covariance, which neither run optimises, falls with it (measured to 3.9e-6 of the start's
    for the texture, 0.31 for the stylization, which trades style against content)."""
    net = load_backbone("random", seed=0)
    style = load_image(IMAGES / "brick.png", 40)
    kwargs = dict(style=style, num_steps=40, precision="fp32", seed=0, tv_weight=0.0)  # the random network's style losses are tiny: the default total variation would outweigh them
    start = torch.rand((1, 3, 40, 40), generator=torch.Generator().manual_seed(0))
    if content:
        kwargs["content"] = start = load_image(IMAGES / "chelsea.png", 40)
    ours = synthesize(net, optimizer="lbfgs", **kwargs)
    theirs = synthesize(net, optimizer="scipy-lbfgsb", **kwargs)
    assert len(ours.history) == 40 and ours.stop.kind == "budget" and ours.stopped == ""
    assert ours.best_loss <= 1.05 * theirs.best_loss
    unoptimised = (style_distance(net, ours.image, style, statistic="mean_cov")
                   / style_distance(net, start, style, statistic="mean_cov"))
    assert unoptimised < (0.5 if content else 1e-4)


def test_the_gpu_path_takes_the_cpu_path_steps(monkeypatch):
    """Without host checks (the path taken on a GPU: every breakpoint block scanned, the masked
    W^T Z Z^T W) a real synthesis takes the same steps as with them, up to rounding."""
    from neural_style.optim import optimizers

    net = load_backbone("random", seed=0)
    kwargs = dict(style=load_image(IMAGES / "brick.png", 32), num_steps=25, precision="fp32", seed=0,
                  layer_weights=[0.2] * 5, style_weight=1e3)  # the paper's weights: with the defaults the
    # loss of this random network is ~1e-7 and the two paths' rounding parts after 7 steps
    cpu = synthesize(net, **kwargs)
    monkeypatch.setattr(lbfgsb, "CHUNK_ALL", 1000)  # several blocks at 32 px (3072 variables)
    monkeypatch.setattr(optimizers, "minimize_lbfgsb", functools.partial(lbfgsb.minimize_lbfgsb, host_checks=False))
    gpu_like = synthesize(net, **kwargs)
    gpu_losses, cpu_losses = [h["total"] for h in gpu_like.history], [h["total"] for h in cpu.history]
    # the blocks' float32 partial sums round differently; the gap grows as the loss falls 1e6-fold
    np.testing.assert_allclose(gpu_losses[:20], cpu_losses[:20], rtol=1e-4)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=3e-3)


# ------------------------------------------------------------------------------------------------
# CUDA


@CUDA
def test_cuda_run_matches_the_cpu_and_syncs_once_per_evaluation():
    """On the GPU the iterates are the CPU's (float64 quadratic), and the only synchronisations
    are the evaluations' transfers (torch's sync debug mode counts them)."""
    results = {}
    for device in ("cpu", "cuda"):
        quad = Quadratic(n=3000, seed=4, device=device)
        x0 = torch.full((1, 3, 20, 50), 0.5, dtype=torch.float64, device=device)
        history = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                out = optimise(quad, x0, optimizer="lbfgs", num_steps=60, history=history)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        results[device] = ([h["total"] for h in history], len(syncs), out)
    cpu, cuda = results["cpu"], results["cuda"]
    np.testing.assert_allclose(cuda[0], cpu[0], rtol=1e-6)
    assert cuda[1] <= len(cuda[0]) + 2, f"{cuda[1]} synchronisations for {len(cuda[0])} evaluations"
    assert float(cuda[2].image.min()) >= 0 and float(cuda[2].image.max()) <= 1


@CUDA
def test_cuda_synthesis_keeps_pixels_in_the_box():
    net = load_backbone("random", seed=0, device="cuda")
    style = load_image(IMAGES / "brick.png", 48)
    seen = []
    result = synthesize(net, style=style, num_steps=30, precision="fp32",
                        callback=lambda info: seen.append((float(info.image.min()), float(info.image.max()))))
    assert len(result.history) == 30 and all(lo >= 0 and hi <= 1 for lo, hi in seen)
    assert result.best_loss < 0.1 * result.history[0]["total"]


# ------------------------------------------------------------------------------------------------
# Convergence: the gain of a run's last fifth


def test_tail_gain_is_the_drop_of_the_lowest_value_over_the_last_fifth():
    from neural_style.optim.record import converged, tail_gain

    # ten values: the last fifth is the last two; the lowest before them is 4.0, after them 3.0
    values = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.5, 4.0, 3.5, 3.0]
    assert tail_gain(values) == pytest.approx(1 - 3.0 / 4.0)
    assert not converged(values)
    # a rise at the end gains nothing; a fall of 0.5% counts as converged, 1% does not
    assert tail_gain([5.0, 4.0, 3.0, 3.0, 3.0, 3.2, 3.3, 3.4, 3.5, 3.6]) == 0.0
    assert converged([2.0] * 8 + [1.995, 1.99])
    assert not converged([2.0] * 8 + [1.99, 1.98])
    with pytest.raises(ValueError, match="two values or more"):
        tail_gain([1.0])

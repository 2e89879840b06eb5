"""The optimisers of an image, by name: how each runs, whether it takes a step size, its memory.

- ``lbfgs``: L-BFGS-B on the image's device (``lbfgsb.py``), pixels bounded to [0, 1];
- ``scipy-lbfgsb``: scipy's L-BFGS-B, float64 on the CPU, kept for comparison;
- ``adam``: Adam projected onto [0, 1] after every step.

Each evaluation brings its loss terms to the host in one transfer; L-BFGS adds its line-search
scalars to the same transfer. ``optimise`` runs one of them under a ``Record``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np
import scipy.optimize
import torch
from torch import Tensor

from ..core.checks import check_integer, check_positive
from .lbfgsb import CHUNK_ALL, minimize_lbfgsb
from .record import BUDGET, Callback, Evaluator, LossFunction, Record, RunOutcome, Stop, StopRun

OptimizerName = Literal["lbfgs", "scipy-lbfgsb", "adam"]
HISTORY_SIZE = 20  # L-BFGS pairs kept by both L-BFGS-B implementations (scipy's maxcor)


@dataclass(frozen=True)
class Optimizer:
    """One way to optimise an image.

    Attributes:
        name: the key of ``OPTIMIZERS`` (and of ``synthesize(optimizer=...)``).
        minimise: (evaluate, start image, budget, record, step size) -> why it ended; it runs until
            it stops by itself or ``evaluate`` raises ``StopRun`` (budget, callback, NaN).
        default_lr: the step size used when none is given; None: takes no step size.
        state_bytes: bytes of the optimiser's own state for an image of n pixel values.
    """

    name: OptimizerName
    minimise: Callable[[Evaluator, Tensor, int, Record, Optional[float]], Stop]
    default_lr: float | None
    state_bytes: Callable[[int], int]

    @property
    def takes_lr(self) -> bool:
        return self.default_lr is not None


def _lbfgsb(evaluate: Evaluator, image: Tensor, num_steps: int, record: Record, lr: float | None) -> Stop:
    """L-BFGS-B on the image's device; it ends by itself or when the budget raises ``StopRun``."""
    end = minimize_lbfgsb(evaluate, image, history_size=HISTORY_SIZE)
    prefix = "converged" if end.reason == "converged" else "line search failed"
    return Stop(end.reason, f"{prefix} after {record.count} evaluations: {end.message}")


def _lbfgsb_bytes(n: int) -> int:
    """The (2k, n) pairs in float32, about ten float64 n-vectors (iterate, gradient, direction,
    Cauchy point, the bounds' masks, the best image) and the Cauchy point's breakpoint blocks of
    up to ``lbfgsb.CHUNK_ALL`` rows of 2k values, a few at a time."""
    pairs = 2 * HISTORY_SIZE
    return 4 * pairs * n + 8 * 10 * n + 4 * 4 * pairs * min(n, CHUNK_ALL)


def _adam(evaluate: Evaluator, image: Tensor, num_steps: int, record: Record, lr: float | None) -> Stop:
    """Projected Adam: a step, then the pixels clamped to [0, 1]; runs until the budget ends it."""
    image = image.clone().requires_grad_(True)
    if lr is None:  # optimise() passes check_run's lr, which is default_lr when none was given
        raise ValueError("Adam needs a step size: give lr.")
    adam = torch.optim.Adam([image], lr=lr)
    while True:
        _, image.grad, _ = evaluate(image)
        adam.step()
        with torch.no_grad():
            image.clamp_(0, 1)


def _scipy_lbfgsb(evaluate: Evaluator, image: Tensor, num_steps: int, record: Record, lr: float | None) -> Stop:
    """scipy's L-BFGS-B (float64, on the CPU) with ``maxcor`` = HISTORY_SIZE and no tolerance-based stop.

    The homework's Lasagne code used it; every evaluation copies the image and its gradient
    between the device and the host.
    """
    shape, device = image.shape, image.device

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad, _ = evaluate(torch.from_numpy(flat).view(shape).to(device, torch.float32))
        return loss, grad.double().cpu().numpy().ravel()

    x0 = image.double().cpu().numpy().ravel()
    bounds = scipy.optimize.Bounds(np.zeros_like(x0), np.ones_like(x0))
    result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                     options={"maxfun": num_steps, "maxiter": num_steps, "maxcor": HISTORY_SIZE,
                                              "ftol": 0.0, "gtol": 0.0})
    said = f"scipy's L-BFGS-B after {record.count} evaluations: {result.message}"
    if result.status == 0:
        return Stop("converged", f"converged: {said}")
    if result.status == 1:
        return BUDGET
    return Stop("line_search", f"line search failed: {said}")


ADAM = Optimizer("adam", _adam, default_lr=0.02, state_bytes=lambda n: 4 * 4 * n)  # two moments, the gradient
OPTIMIZERS: dict[OptimizerName, Optimizer] = {
    "lbfgs": Optimizer("lbfgs", _lbfgsb, default_lr=None, state_bytes=_lbfgsb_bytes),
    "scipy-lbfgsb": Optimizer("scipy-lbfgsb", _scipy_lbfgsb, default_lr=None,
                              state_bytes=lambda n: 8 * (2 * HISTORY_SIZE + 6) * n),  # float64 history and work
    "adam": ADAM,
}
"""Every optimiser by name (the names of ``OptimizerName``), in the order the front ends offer them."""


def get_optimizer(name: str) -> Optimizer:
    """The optimiser called ``name``, or ValueError naming the choices."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(map(repr, OPTIMIZERS))}.")
    return OPTIMIZERS[name]


def check_run(optimizer: str, num_steps: int, lr: float | None = None) -> tuple[int, float | None]:
    """``num_steps`` as an int and the step size the run uses (the optimiser's default when none is
    given, None for one that takes none), or ValueError: an unknown ``optimizer``, ``num_steps``
    not a positive integer (numpy integers are accepted), ``lr`` not a finite number > 0."""
    chosen = get_optimizer(optimizer)
    num_steps = check_integer("num_steps", num_steps)
    if lr is not None:
        lr = check_positive("lr", lr)
    return num_steps, (chosen.default_lr if lr is None else lr) if chosen.takes_lr else lr


def optimise(objective: LossFunction, image: Tensor, *, optimizer: str, num_steps: int, lr: float | None = None,
             callback: Callback | None = None, history: list[dict[str, float]],
             total_steps: int | None = None, fields: dict[str, float] | None = None) -> RunOutcome:
    """Minimise ``objective`` over images in [0, 1] from ``image`` (1, 3, H, W) for ``num_steps``
    evaluations (line-search evaluations included), appending one record per evaluation to
    ``history``.

    Args:
        objective: image -> loss terms, ``total`` among them; runs on ``image``'s device.
        image: the start, on the device of the run (clamped to [0, 1]).
        optimizer: a key of ``OPTIMIZERS``.
        num_steps: the budget of evaluations.
        lr: the step size of an optimiser that takes one (default: its ``default_lr``).
        callback, total_steps, fields: see ``Record``.

    Returns:
        The best image, its index in ``history`` and the ``Stop``.
    """
    num_steps, lr = check_run(optimizer, num_steps, lr)
    record = Record(history, budget=num_steps, total_steps=total_steps or num_steps, callback=callback,
                    fields=fields)
    evaluate = record.evaluator(objective, image.dtype)
    image = image.detach().clamp(0, 1)
    try:
        stop = get_optimizer(optimizer).minimise(evaluate, image, num_steps, record, lr)
    except StopRun as ended:
        stop = ended.stop
    except KeyboardInterrupt:
        stop = Stop("interrupted", "interrupted")
    best = image if record.best is None else record.best
    return RunOutcome(best.clamp(0, 1).cpu(), record.best_step, stop)

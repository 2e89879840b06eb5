"""The run machinery shared by synthesis, feature inversion and the adversarial loop.

An image x (1, 3, H, W) in [0, 1] is optimised for a budget of evaluations of an objective that
returns its loss terms ({name: 0-dim tensor}, ``total`` among them). This module keeps the record
of a run (one dict of terms per evaluation, the best image seen), calls the callback, and says
why a run ended (``Stop``):

- ``budget``: every evaluation of the budget was used (not an early stop);
- ``converged``: the optimiser stopped by itself (projected gradient 0, or no progress);
- ``line_search``: L-BFGS found no step that decreases the loss, even from the steepest-descent
  model;
- ``not_finite``: the loss became NaN or infinite; ``callback``: the callback returned True;
  ``interrupted``: KeyboardInterrupt.

Optimisers: ``lbfgs`` (L-BFGS-B on the image's device, ``lbfgsb.py``), ``scipy-lbfgsb`` (scipy's
L-BFGS-B, float64 on the CPU, kept for comparison) and ``adam`` (projected onto [0, 1]). Each
evaluation brings its loss terms to the host in one transfer; L-BFGS adds its line-search scalars
to the same transfer.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np
import scipy.optimize
import torch
from torch import Tensor

from .checks import check_integer, check_positive
from .lbfgsb import minimize_lbfgsb

OptimizerName = Literal["lbfgs", "scipy-lbfgsb", "adam"]
OPTIMIZERS: tuple[str, ...] = ("lbfgs", "scipy-lbfgsb", "adam")
StopKind = Literal["budget", "converged", "line_search", "not_finite", "callback", "interrupted"]
HISTORY_SIZE = 20  # L-BFGS pairs kept (scipy's maxcor)
ADAM_LR = 0.02  # Adam's step size when none is given
Objective = Callable[[Tensor], dict[str, Tensor]]


class SynthesisNotice(UserWarning):
    """A run ended before its budget for a reason other than the callback (see ``Stop``)."""


@dataclass
class StepInfo:
    """What the callback sees after each evaluation of the loss.

    ``image`` is the current image (1, 3, H, W), not a copy: clone it to keep it.
    """

    step: int
    num_steps: int
    loss: float
    terms: dict[str, float]
    image: Tensor


@dataclass(frozen=True)
class Stop:
    """Why a run ended: ``kind`` (see the module docstring) and a sentence for people.

    ``message`` is ``""`` for ``budget`` (the run used all its evaluations).
    """

    kind: StopKind
    message: str = ""

    @property
    def early(self) -> bool:
        """True when the run ended before using its budget."""
        return self.kind != "budget"

    @property
    def breaks(self) -> bool:
        """True when the work should not go on (callback, interrupt, non-finite loss)."""
        return self.kind in ("callback", "interrupted", "not_finite")

    def followed_by(self, later: Stop, where: str = "") -> Stop:
        """How a run of stages ended when a stage ended with ``self`` and the next with ``later``
        (``where`` names the later stage): the first early end, unless a later one breaks the
        run. A stage that converged early hands its image on to the next one."""
        if not later.early or (self.early and not later.breaks):
            return self
        return later if later.breaks or not where else replace(later, message=f"{later.message} ({where})")


BUDGET = Stop("budget")


class StopRun(Exception):
    """Raised inside a run to end it with ``stop``."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.message or stop.kind)
        self.stop = stop


@dataclass
class RunOutcome:
    """The best image of one ``optimise`` call (CPU, clamped), its 1-based index in the history
    (0 = the starting image, when no evaluation finished) and why the call ended."""

    image: Tensor
    best_step: int
    stop: Stop


class Record:
    """The per-evaluation record of a run: history, best image, callback, budget.

    Args:
        history: the list the records are appended to (shared across the scales of a run).
        budget: evaluations allowed to this record; one more raises ``StopRun(BUDGET)``.
        total_steps: the run's total, shown to the callback as ``num_steps``.
        callback: called with a ``StepInfo`` after every evaluation; True stops the run.
        fields: constant entries added to every record (e.g. the scale).
    """

    def __init__(self, history: list[dict[str, float]], *, budget: int, total_steps: int,
                 callback: Callable[[StepInfo], bool | None] | None = None,
                 fields: dict[str, float] | None = None) -> None:
        self.history, self.budget, self.total_steps = history, budget, total_steps
        self.callback, self.fields, self.first = callback, fields or {}, len(history)
        self.best_loss, self.best_step, self.best_image = math.inf, 0, None

    @property
    def count(self) -> int:
        """Evaluations recorded so far by this record."""
        return len(self.history) - self.first

    def add(self, terms: dict[str, float], image: Tensor) -> None:
        """Record one evaluation's terms at ``image``; raises ``StopRun`` on a non-finite total or
        when the callback returns True."""
        total = terms["total"]
        if not math.isfinite(total):
            raise StopRun(Stop("not_finite", f"the loss became {total} at evaluation {len(self.history) + 1}"))
        self.history.append({**terms, **self.fields})
        if total < self.best_loss:
            self.best_loss, self.best_step, self.best_image = total, len(self.history), image.detach().clone()
        if self.callback is not None and self.callback(
                StepInfo(len(self.history), self.total_steps, total, terms, image.detach())):
            raise StopRun(Stop("callback", "stopped by the callback"))

    def evaluator(self, objective: Objective, dtype: torch.dtype) -> Callable[..., tuple[float, Tensor, list[float]]]:
        """``objective`` as an ``lbfgsb.Evaluate``: loss, gradient and extras with one host transfer.

        Points are rounded to ``dtype`` (the image's) before the objective sees them.
        """

        def evaluate(point: Tensor, extra: Callable[[Tensor, Tensor], Tensor] | None = None
                     ) -> tuple[float, Tensor, list[float]]:
            if self.count >= self.budget:
                raise StopRun(BUDGET)  # a line search may ask for more evaluations than are left
            x = point.detach().to(dtype).requires_grad_(True)
            terms = objective(x)
            (grad,) = torch.autograd.grad(terms["total"], x)
            wide = torch.float64 if x.device.type != "mps" else torch.float32
            packed = torch.stack([v.detach().to(wide) for v in terms.values()])
            if extra is not None:
                packed = torch.cat([packed, extra(point.detach(), grad.to(point.dtype)).to(wide)])
            values = packed.tolist()  # the evaluation's one transfer to the host
            entry = dict(zip(terms, values))
            self.add(entry, x)
            return entry["total"], grad, values[len(terms):]

        return evaluate


def check_run(optimizer: str, num_steps: int, lr: float | None = None) -> tuple[int, float | None]:
    """``num_steps`` as an int and the step size the run uses (``ADAM_LR`` for Adam without one,
    None for L-BFGS), or ValueError: an unknown ``optimizer``, ``num_steps`` not a positive
    integer (numpy integers are accepted), ``lr`` not a finite number > 0."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {', '.join(map(repr, OPTIMIZERS))}.")
    num_steps = check_integer("num_steps", num_steps)
    if lr is not None:
        lr = check_positive("lr", lr)
    return num_steps, (ADAM_LR if lr is None else lr) if optimizer == "adam" else lr


def optimise(objective: Objective, image: Tensor, *, optimizer: str, num_steps: int, lr: float | None = None,
             callback: Callable[[StepInfo], bool | None] | None = None, history: list[dict[str, float]],
             total_steps: int | None = None, fields: dict[str, float] | None = None) -> RunOutcome:
    """Minimise ``objective`` over images in [0, 1] from ``image`` (1, 3, H, W) for ``num_steps``
    evaluations (line-search evaluations included), appending one record per evaluation to
    ``history``.

    Args:
        objective: image -> loss terms, ``total`` among them; runs on ``image``'s device.
        image: the start, on the device of the run (clamped to [0, 1]).
        optimizer: ``lbfgs``, ``scipy-lbfgsb`` or ``adam``.
        num_steps: the budget of evaluations.
        lr: Adam's step size (default ``ADAM_LR``); unused by L-BFGS.
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
        if optimizer == "lbfgs":
            end = minimize_lbfgsb(evaluate, image, history_size=HISTORY_SIZE)
            prefix = "converged" if end.reason == "converged" else "line search failed"
            stop = Stop(end.reason, f"{prefix} after {record.count} evaluations: {end.message}")
        elif optimizer == "scipy-lbfgsb":
            stop = _scipy_lbfgsb(evaluate, image, num_steps, record)
        else:
            stop = _adam(evaluate, image, ADAM_LR if lr is None else lr)
    except StopRun as ended:
        stop = ended.stop
    except KeyboardInterrupt:
        stop = Stop("interrupted", "interrupted")
    best = image if record.best_image is None else record.best_image
    return RunOutcome(best.clamp(0, 1).cpu(), record.best_step, stop)


def _adam(evaluate: Callable[..., tuple[float, Tensor, list[float]]], image: Tensor, lr: float) -> Stop:
    """Projected Adam: a step, then the pixels clamped to [0, 1]; runs until the budget ends it."""
    image = image.clone().requires_grad_(True)
    adam = torch.optim.Adam([image], lr=lr)
    while True:
        _, image.grad, _ = evaluate(image)
        adam.step()
        with torch.no_grad():
            image.clamp_(0, 1)


def _scipy_lbfgsb(evaluate: Callable[..., tuple[float, Tensor, list[float]]], image: Tensor, num_steps: int,
                  record: Record) -> Stop:
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


def warn_if_early(stop: Stop, what: str, evaluations: int, *, returning: str = "the best image of") -> None:
    """Warn (``SynthesisNotice``) when a run ended early for a reason other than the callback:
    "<what> stopped early (<why>); returning <returning> <evaluations> evaluations."."""
    if stop.early and stop.kind != "callback":
        warnings.warn(f"{what} stopped early ({stop.message}); returning {returning} {evaluations} evaluations.",
                      SynthesisNotice, stacklevel=3)

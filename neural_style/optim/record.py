"""The record of a run: what the callback sees, the best image, and why the run ended.

An image x (1, 3, H, W) in [0, 1] is optimised for a budget of evaluations of a loss function
that returns its loss terms ({name: 0-dim tensor}, ``total`` among them). ``Record`` keeps one
dict of terms per evaluation and the best image seen, calls the callback, and ends the run with
a typed ``Stop``:

- ``budget``: every evaluation of the budget was used (not an early stop);
- ``converged``: the optimiser stopped by itself (projected gradient 0, or no progress);
- ``line_search``: L-BFGS found no step that decreases the loss, even from the steepest-descent
  model;
- ``not_finite``: the loss became NaN or infinite; ``callback``: the callback returned True
  ("stopped by the callback") or a sentence saying who stopped the run (the panel's Stop button
  returns "stopped by the user"), which becomes the stop's message;
  ``callback_error``: the callback raised an exception (its type, message and line are in the
  stop's message and the ``SynthesisNotice``; the run keeps its best image rather than losing it
  to a bug in a progress display); ``interrupted``: KeyboardInterrupt (or a signal turned into one).

Synthesis, feature inversion, the adversarial loop and the texture-network training all keep
their runs with it.
"""

from __future__ import annotations

import math
import traceback
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch
from torch import Tensor

from ..core.images import save_image

StopKind = Literal["budget", "converged", "line_search", "not_finite", "callback", "callback_error", "interrupted"]
LossFunction = Callable[[Tensor], dict[str, Tensor]]
"""image (1, 3, H, W) -> loss terms {name: 0-dim tensor}, ``total`` among them."""
Evaluator = Callable[..., tuple[float, Tensor, list[float]]]
"""``Record.evaluator``'s function: point (and extras) -> loss, gradient, extra host scalars."""


CONVERGED_GAIN = 0.01
"""A run whose lowest loss fell by less than this fraction over its last fifth of evaluations counts
as converged (``converged``)."""


def tail_gain(values: Sequence[float], fraction: float = 0.2) -> float:
    """How much the lowest value so far fell over the last ``fraction`` of ``values``, relative to
    where it stood before: 1 - min(all) / min(all but the last fraction).

    0 means nothing was gained at the end (a run at its minimum); 0.3 means the run's best was
    still 30% lower after its last fifth. Needs at least two values; a non-positive minimum
    before the tail gives 0 when nothing was gained and infinity otherwise.
    """
    if len(values) < 2 or not 0 < fraction < 1:
        raise ValueError(f"tail_gain needs two values or more and 0 < fraction < 1, got {len(values)} and {fraction}.")
    head = max(1, min(len(values) - 1, round(len(values) * (1 - fraction))))
    before, after = min(values[:head]), min(values)
    if after >= before:
        return 0.0
    return 1.0 - after / before if before > 0 else math.inf


def converged(values: Sequence[float], fraction: float = 0.2, tolerance: float = CONVERGED_GAIN) -> bool:
    """True when ``tail_gain(values, fraction)`` is below ``tolerance`` (1% over the last fifth)."""
    return tail_gain(values, fraction) < tolerance


class SynthesisNotice(UserWarning):
    """A run ended before its budget for a reason other than the callback (see ``Stop``)."""


@dataclass
class StepInfo:
    """What the callback sees after each evaluation of the loss.

    ``image`` is the current image (1, 3, H, W), not a copy: clone it to keep it. ``loss`` is this
    evaluation's, which may be a line search's trial far above the current loss; ``best_loss`` is
    the lowest of the run (of its current stage, in a coarse-to-fine run) so far, the loss of the
    image the run would return now: what a progress display shows.
    """

    step: int
    num_steps: int
    loss: float
    terms: dict[str, float]
    image: Tensor
    best_loss: float = math.nan


Callback = Callable[[StepInfo], "bool | str | None"]
"""Called after every evaluation; True, or a non-empty sentence saying why, stops the run."""


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
    def failed(self) -> bool:
        """True when the run went wrong before its budget (the commands exit with 6): the loss
        stopped being finite, the line search found no step, or the callback raised."""
        return self.kind in ("not_finite", "line_search", "callback_error")

    @property
    def breaks(self) -> bool:
        """True when the work should not go on (callback, its error, interrupt, non-finite loss)."""
        return self.kind in ("callback", "callback_error", "interrupted", "not_finite")

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
class RunResult:
    """What every run returns: its image, its record and how it ended.

    Attributes:
        image: (1, 3, H, W) in [0, 1], on the CPU.
        history: one dict of loss terms per evaluation (``total`` among them).
        stop: how the run ended (``stop.kind``; ``stop.message`` says why, "" for ``budget``).
        seconds: wall time of the run.
        params: every parameter of the run, for the PNG metadata.
    """

    image: Tensor
    history: list[dict[str, float]]
    stop: Stop
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def stopped(self) -> str:
        """Why the run ended early, as a sentence; "" when it used its whole budget."""
        return self.stop.message

    @property
    def final_loss(self) -> float:
        """The loss the saved image has (recorded in the PNG as ``final_loss``)."""
        return self.history[-1]["total"] if self.history else math.nan

    def save(self, path: str | Path, *, overwrite: bool = False, **extra: Any) -> None:
        """Write the image as PNG with ``params`` (and ``extra``) in its metadata.

        ``extra`` adds fields (a name, the input files); one that would replace a recorded
        parameter or ``final_loss`` raises ValueError, since the metadata must say how the image
        was made. An existing file raises FileExistsError unless ``overwrite`` is True.
        """
        clashes = sorted(key for key in extra if key in self.params or key == "final_loss")
        if clashes:
            raise ValueError(f"{', '.join(clashes)} {'is' if len(clashes) == 1 else 'are'} recorded by the run "
                             "itself; extra fields may not replace them: give them other names (e.g. "
                             f"{clashes[0]}_note=...).")
        save_image(self.image, path, {**self.params, "final_loss": self.final_loss, **extra}, overwrite=overwrite)


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
        callback: called with a ``StepInfo`` after every evaluation; True (or a sentence saying
            why) stops the run.
        fields: constant entries added to every record (e.g. the scale).
        keep: what is kept of the best evaluation (``best``), given its image; default a copy of
            the image (a training keeps its network's weights instead).
    """

    def __init__(self, history: list[dict[str, float]], *, budget: int, total_steps: int,
                 callback: Callback | None = None,
                 fields: dict[str, float] | None = None, keep: Callable[[Tensor], Any] | None = None) -> None:
        self.history, self.budget, self.total_steps = history, budget, total_steps
        self.callback, self.fields, self.first = callback, fields or {}, len(history)
        self.keep = keep or (lambda image: image.detach().clone())
        self.best_loss, self.best_step = math.inf, 0
        self.best: Any = None

    @property
    def count(self) -> int:
        """Evaluations recorded so far by this record."""
        return len(self.history) - self.first

    def add(self, terms: dict[str, float], image: Tensor) -> None:
        """Record one evaluation's terms at ``image``; raises ``StopRun`` on a non-finite total, when
        the callback returns True, or when it raises an exception (``callback_error``; a
        KeyboardInterrupt is not an exception here and goes on up as an interrupt)."""
        total = terms["total"]
        if not math.isfinite(total):
            raise StopRun(Stop("not_finite", f"the loss became {total} at evaluation {len(self.history) + 1}"))
        self.history.append({**terms, **self.fields})
        if total < self.best_loss:
            self.best_loss, self.best_step, self.best = total, len(self.history), self.keep(image)
        if self.callback is None:
            return
        try:
            stop = self.callback(StepInfo(len(self.history), self.total_steps, total, terms, image.detach(),
                                          self.best_loss))
        except Exception as error:
            raise StopRun(Stop("callback_error", callback_failure(error, len(self.history)))) from error
        if stop:
            raise StopRun(Stop("callback", stop if isinstance(stop, str) else "stopped by the callback"))

    def evaluator(self, objective: LossFunction, dtype: torch.dtype) -> Evaluator:
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


def callback_failure(error: Exception, evaluation: int) -> str:
    """What a stop by a failing callback says: the exception's type and message, and where it was
    raised (the innermost frame, in the caller's code), since the traceback itself is not kept."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        where = f", in {frames[-1].filename}, line {frames[-1].lineno}"
    return f"the callback raised {type(error).__name__}: {error} at evaluation {evaluation}{where}"


def warn_if_early(stop: Stop, what: str, evaluations: int, *, returning: str = "the best image of") -> None:
    """Warn (``SynthesisNotice``) when a run ended early for a reason other than the callback:
    "<what> stopped early (<why>); returning <returning> <evaluations> evaluations."."""
    if stop.early and stop.kind != "callback":
        warnings.warn(f"{what} stopped early ({stop.message}); returning {returning} {evaluations} evaluations.",
                      SynthesisNotice, stacklevel=3)

"""The Moré–Thuente line search (MINPACK-2 ``dcsrch``/``dcstep``), on host scalars.

Along a direction d from x, phi(a) = f(x + a d) with phi'(a) = g(x + a d)^T d. The search looks
for a step a that satisfies the strong Wolfe conditions

    phi(a) <= phi(0) + ftol * a * phi'(0)        (sufficient decrease)
    |phi'(a)| <= gtol * |phi'(0)|                (curvature)

by keeping an interval [stx, sty] that contains such a step and choosing each new trial from cubic
and quadratic interpolants of the values and slopes seen so far (J. J. Moré and D. J. Thuente,
"Line search algorithms with guaranteed sufficient decrease", ACM TOMS 20, 1994). L-BFGS-B calls
it with ftol = 1e-3, gtol = 0.9, xtol = 0.1 and stpmax = the largest step that stays in the box.

The search only sees two numbers per trial (phi and phi'), so it runs on the host while the vectors
stay on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SearchState = Literal["evaluate", "converged", "warning"]

XTRAPL, XTRAPU = 1.1, 4.0  # bounds of an extrapolated step, relative to the last one


@dataclass
class _Point:
    """A step with its function value and slope."""

    stp: float
    f: float
    g: float


class MoreThuente:
    """One line search: create it with phi(0), phi'(0) < 0 and the first trial step, then call
    ``update(phi(stp), phi'(stp))`` after each evaluation at ``stp``.

    Args:
        f0, g0: phi(0) and phi'(0) (must be negative: a descent direction).
        stp: the first trial step, in [stpmin, stpmax].
        ftol, gtol, xtol: sufficient decrease, curvature and interval-width tolerances.
        stpmin, stpmax: bounds of the step.

    Attributes:
        stp: the step to evaluate next (state ``evaluate``) or the accepted step.
        message: why the search ended with state ``warning``.
    """

    def __init__(self, f0: float, g0: float, stp: float, *, ftol: float = 1e-3, gtol: float = 0.9,
                 xtol: float = 0.1, stpmin: float = 0.0, stpmax: float = 1e10) -> None:
        if not g0 < 0:
            raise ValueError(f"phi'(0) = {g0} is not negative: not a descent direction.")
        if not (0 <= stpmin <= stp <= stpmax):
            raise ValueError(f"Need 0 <= stpmin <= stp <= stpmax, got {stpmin}, {stp}, {stpmax}.")
        self.stp, self.ftol, self.gtol, self.xtol = stp, ftol, gtol, xtol
        self.stpmin, self.stpmax = stpmin, stpmax
        self.finit, self.ginit, self.gtest = f0, g0, ftol * g0
        self.brackt, self.stage = False, 1
        self.width = stpmax - stpmin
        self.width1 = 2 * self.width
        self.x = _Point(0.0, f0, g0)  # best step so far
        self.y = _Point(0.0, f0, g0)  # other end of the interval
        self.stmin, self.stmax = 0.0, stp + XTRAPU * stp
        self.message = ""

    def update(self, f: float, g: float) -> SearchState:
        """Take phi(stp) = f, phi'(stp) = g; returns ``evaluate`` (at the new ``self.stp``),
        ``converged`` (strong Wolfe holds at ``stp``) or ``warning`` (no further progress)."""
        stp = self.stp
        ftest = self.finit + stp * self.gtest
        if self.stage == 1 and f <= ftest and g >= 0:
            self.stage = 2
        warning = self._warning(stp, f, g, ftest)
        if f <= ftest and abs(g) <= self.gtol * -self.ginit:
            return "converged"
        if warning:
            self.message = warning
            return "warning"
        if self.stage == 1 and self.x.f >= f > ftest:
            # a lower value without sufficient decrease: step on the modified function
            # psi(a) = phi(a) - phi(0) - ftol a phi'(0), whose derivative at the best step is < 0
            shift = self.gtest
            x = _Point(self.x.stp, self.x.f - self.x.stp * shift, self.x.g - shift)
            y = _Point(self.y.stp, self.y.f - self.y.stp * shift, self.y.g - shift)
            new = self._step(x, y, _Point(stp, f - stp * shift, g - shift))
            self.x = _Point(x.stp, x.f + x.stp * shift, x.g + shift)
            self.y = _Point(y.stp, y.f + y.stp * shift, y.g + shift)
        else:
            new = self._step(self.x, self.y, _Point(stp, f, g))
        if self.brackt:
            if abs(self.y.stp - self.x.stp) >= 0.66 * self.width1:
                new = self.x.stp + 0.5 * (self.y.stp - self.x.stp)
            self.width1, self.width = self.width, abs(self.y.stp - self.x.stp)
            self.stmin, self.stmax = min(self.x.stp, self.y.stp), max(self.x.stp, self.y.stp)
        else:
            self.stmin = new + XTRAPL * (new - self.x.stp)
            self.stmax = new + XTRAPU * (new - self.x.stp)
        new = min(max(new, self.stpmin), self.stpmax)
        if self.brackt and (new <= self.stmin or new >= self.stmax
                            or self.stmax - self.stmin <= self.xtol * self.stmax):
            new = self.x.stp  # no further progress is possible: fall back to the best step
        self.stp = new
        return "evaluate"

    def _warning(self, stp: float, f: float, g: float, ftest: float) -> str:
        if self.brackt and (stp <= self.stmin or stp >= self.stmax):
            return "rounding errors prevent progress"
        if self.brackt and self.stmax - self.stmin <= self.xtol * self.stmax:
            return "the step interval is below xtol"
        if stp == self.stpmax and f <= ftest and g <= self.gtest:
            return "the step is at its maximum"
        if stp == self.stpmin and (f > ftest or g >= self.gtest):
            return "the step is at its minimum"
        return ""

    def _step(self, x: _Point, y: _Point, p: _Point) -> float:
        """dcstep: a safeguarded trial step from the interval (x, y) and the new point p, kept in
        [stmin, stmax]; updates x and y in place (and ``brackt``) and returns the next step."""
        sgnd = p.g * math.copysign(1.0, x.g)
        if p.f > x.f:  # higher value: the minimum is bracketed between x and p
            stpc = _cubic_min(x, p)
            stpq = x.stp + x.g / ((x.f - p.f) / (p.stp - x.stp) + x.g) / 2 * (p.stp - x.stp)
            stpf = stpc if abs(stpc - x.stp) < abs(stpq - x.stp) else stpc + (stpq - stpc) / 2
            self.brackt = True
        elif sgnd < 0:  # lower value, slopes of opposite sign: bracketed between p and x
            stpc = _cubic_min(p, x)
            stpq = p.stp + p.g / (p.g - x.g) * (x.stp - p.stp)
            stpf = stpc if abs(stpc - p.stp) > abs(stpq - p.stp) else stpq
            self.brackt = True
        elif abs(p.g) < abs(x.g):  # lower value, same sign, the slope shrinks
            stpf = self._shrinking_slope(x, y, p)
        elif self.brackt:  # lower value, same sign, the slope does not shrink
            stpf = _cubic_min(p, y)
        else:
            stpf = self.stmax if p.stp > x.stp else self.stmin
        if p.f > x.f:
            y.stp, y.f, y.g = p.stp, p.f, p.g
        else:
            if sgnd < 0:
                y.stp, y.f, y.g = x.stp, x.f, x.g
            x.stp, x.f, x.g = p.stp, p.f, p.g
        return stpf

    def _shrinking_slope(self, x: _Point, y: _Point, p: _Point) -> float:
        """Third case of dcstep: the cubic step if the cubic tends to infinity in the direction of
        the step, else the secant step; limited to 66% of the way to y once bracketed."""
        theta = 3 * (x.f - p.f) / (p.stp - x.stp) + x.g + p.g
        s = max(abs(theta), abs(x.g), abs(p.g))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (x.g / s) * (p.g / s)))
        if p.stp > x.stp:
            gamma = -gamma
        r = ((gamma - p.g) + theta) / ((gamma + (x.g - p.g)) + gamma)
        if r < 0 and gamma != 0:
            stpc = p.stp + r * (x.stp - p.stp)
        else:
            stpc = self.stmax if p.stp > x.stp else self.stmin
        stpq = p.stp + p.g / (p.g - x.g) * (x.stp - p.stp)
        if self.brackt:
            stpf = stpc if abs(stpc - p.stp) < abs(stpq - p.stp) else stpq
            limit = p.stp + 0.66 * (y.stp - p.stp)
            return min(limit, stpf) if p.stp > x.stp else max(limit, stpf)
        stpf = stpc if abs(stpc - p.stp) > abs(stpq - p.stp) else stpq
        return min(max(stpf, self.stmin), self.stmax)


def _cubic_min(a: _Point, b: _Point) -> float:
    """Minimiser of the cubic that interpolates phi and phi' at the steps a and b."""
    theta = 3 * (a.f - b.f) / (b.stp - a.stp) + a.g + b.g
    s = max(abs(theta), abs(a.g), abs(b.g))
    gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (a.g / s) * (b.g / s)))
    if b.stp < a.stp:
        gamma = -gamma
    r = ((gamma - a.g) + theta) / (((gamma - a.g) + gamma) + b.g)
    return a.stp + r * (b.stp - a.stp)

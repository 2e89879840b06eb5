"""L-BFGS-B on the image's device: bound-constrained limited-memory BFGS with torch tensors.

A port of L-BFGS-B 3.0 (R. H. Byrd, P. Lu, J. Nocedal, C. Zhu, "A limited memory algorithm for
bound constrained optimization", SIAM J. Sci. Comput. 16, 1995; J. L. Morales, J. Nocedal,
"Remark on Algorithm 778", ACM TOMS 38, 2011), the algorithm of scipy's ``L-BFGS-B``, for
min f(x) subject to lo <= x <= hi with x of n elements. Each iteration:

1. The quadratic model m(z) = g^T z + 1/2 z^T B z of f(x + z), with the compact L-BFGS matrix
   B = theta I - W M W^T, W = [Y, theta S] (n, 2m), M = [[-D, L^T], [L, theta S^T S]]^-1 (2m, 2m)
   (D = diag(s_i^T y_i), L = the strictly lower, older-by-newer part of S^T Y).
2. The generalized Cauchy point x^c: the first local minimiser of m along the projected gradient
   path P(x - t g). The path is piecewise linear with one breakpoint t_i per variable; on the
   segment after the first j sorted breakpoints (those variables fixed at their bounds) the model's
   slope and curvature are f'_j(t) = -|d_j|^2 - (W^T c_j)^T M p_j + t f''_j and
   f''_j = theta |d_j|^2 - p_j^T M p_j, with d_j the gradient's free part, p_j = W^T d_j and c_j
   the fixed part of the step. Fortran walks the breakpoints one by one; here they are sorted once
   (torch.sort) and every segment's terms come from cumulative sums of the (n, 2m) rows
   g_i w_i and t_i g_i w_i, so the first segment that holds a minimiser is found in parallel.
3. Subspace minimisation over the variables still free at x^c (Sherman-Morrison-Woodbury):
   d = r / theta + Z W K^-1 W^T Z r / theta^2 with K = M^-1 - W^T Z Z^T W / theta and r the
   model's negative reduced gradient at x^c; the point x^c + d is projected onto the box, or,
   if that is not a descent direction, truncated at the first bound (the 2011 remark).
4. The Moré–Thuente line search (ftol 1e-3, gtol 0.9) from the unit step along x_bar - x,
   capped at the largest step that stays in the box (1 on the first iteration).

All vectors, the history and the small 2m x 2m algebra (in float64) stay on the device. The only
host traffic is the one transfer per evaluation that the caller makes (the loss with its terms);
the line search's slopes and limits ride along in it (``extra`` of ``Evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Protocol

import torch
from torch import Tensor

from .line_search import MoreThuente

CHUNK = 1 << 17  # breakpoints per block of the Cauchy point search, when the host checks each block
CHUNK_ALL = 1 << 21  # the same when every block is scanned: fewer, larger blocks (few launches)
FIRST_BLOCK = 4096  # with host checks, the smallest breakpoints scanned before sorting them all
EPS64 = 2.220446049250313e-16  # float64 machine epsilon, as in L-BFGS-B's tests


class Evaluate(Protocol):
    """f and its gradient at x, with ``extra(x, g)`` (a 1-D device tensor; x as given, g in x's
    dtype) brought to the host in the same transfer as f. Returns (f, g, extra values)."""

    def __call__(self, x: Tensor, extra: Callable[[Tensor, Tensor], Tensor] | None = None
                 ) -> tuple[float, Tensor, list[float]]: ...


@dataclass(frozen=True)
class LbfgsbEnd:
    """Why ``minimize_lbfgsb`` returned before its caller stopped it."""

    reason: Literal["converged", "line_search"]
    message: str
    iterations: int


def projected_gradient_norm(x: Tensor, g: Tensor, lo: float, hi: float) -> Tensor:
    """max_i |P(x - g)_i - x_i|, the optimality measure of a bound-constrained problem (0-dim).

    Formed as L-BFGS-B does, min(|g_i|, distance to the bound -g_i points to), not as the
    difference of two rounded points, which is 0 in float32 for any |g_i| below ulp(x_i) / 2.
    """
    return torch.minimum(g.abs(), _gap(x, -g, lo, hi)).amax()


def _gap(x: Tensor, d: Tensor, lo: float, hi: float) -> Tensor:
    """Distance from x to the bound that d points to: hi - x where d > 0, x - lo where d < 0,
    (hi - lo) / 2 where d = 0.

    Formed from sign(d) with arithmetic only: on the CPU torch.where and comparisons run
    several times slower than arithmetic, and these masks are random (the gradient's signs).
    """
    s = torch.sign(d)
    return 0.5 * ((1 + s) * (hi - x) + (1 - s) * (x - lo))


class _Memory:
    """The last m pairs (s_i, y_i) in a ring of slots, with their inner products on the device.

    ``w`` (2m, n) holds y_i in rows [0, m) and s_i in rows [m, 2m) (slot order), so W^T = ``w``
    scaled by [1, theta]; ``sy``, ``ss``, ``yy`` (m, m) hold s_a^T y_b, s_a^T s_b, y_a^T y_b. Rows
    of unused slots are ignored: the small matrices are formed on the used slots only. ``w`` is
    stored in ``storage`` (the image's dtype); products with it come out in ``small`` (float64).
    """

    def __init__(self, n: int, m: int, *, storage: torch.dtype, small: torch.dtype, device: torch.device) -> None:
        self.m, self.col, self.head = m, 0, 0
        self.w = torch.zeros((2 * m, n), dtype=storage, device=device)
        self.sy = torch.zeros((m, m), dtype=small, device=device)
        self.ss, self.yy = torch.zeros_like(self.sy), torch.zeros_like(self.sy)
        self.theta = torch.ones((), dtype=small, device=device)

    def reset(self) -> None:
        self.col, self.head = 0, 0
        self.theta.fill_(1.0)

    def push(self, s: Tensor, y: Tensor, sy: float) -> None:
        """Add the pair (s, y) (n,) with s^T y = ``sy``; theta becomes y^T y / s^T y."""
        if self.col < self.m:
            slot, self.col = self.col, self.col + 1
        else:
            slot, self.head = self.head, (self.head + 1) % self.m
        k, m = self.col, self.m
        self.w[slot], self.w[m + slot] = y, s
        dots = (self.w @ torch.stack([s, y], dim=1).to(self.w.dtype)).to(self.sy.dtype)  # [Y; S] [s, y]
        self.sy[slot, :k], self.sy[:k, slot] = dots[:k, 0], dots[m:m + k, 1]
        self.sy[slot, slot].fill_(sy)  # fill_: assigning a Python float copies it from the host
        self.ss[slot, :k], self.ss[:k, slot] = dots[m:m + k, 0], dots[m:m + k, 0]
        self.yy[slot, :k], self.yy[:k, slot] = dots[:k, 1], dots[:k, 1]
        self.theta = dots[slot, 1] / sy

    def scale(self) -> Tensor:
        """(2m,) factors that turn [Y, S] into W = [Y, theta S]."""
        ones = self.theta.new_ones(self.m)
        return torch.cat([ones, ones * self.theta])

    def wt(self, v: Tensor) -> Tensor:
        """W^T v for v (n,): (2m,) in ``small``."""
        return (self.w @ v.to(self.w.dtype)).to(self.theta.dtype) * self.scale()

    def wv(self, c: Tensor) -> Tensor:
        """W c for c (2m,): (n,) in ``storage``."""
        return (c * self.scale()).to(self.w.dtype) @ self.w

    def middle(self) -> tuple[Tensor, Tensor, Tensor]:
        """M and N = M^-1 padded to (2m, 2m) (zero on unused slots), and whether M is usable.

        M comes from the block inverse of N with the Schur complement T = theta S^T S + L D^-1 L^T
        (positive definite when the pairs are; L-BFGS-B factorises the same T).
        """
        k, m = self.col, self.m
        pad_m, pad_n = self.sy.new_zeros((2 * m, 2 * m)), self.sy.new_zeros((2 * m, 2 * m))
        if k == 0:
            return pad_m, pad_n, torch.ones((), dtype=torch.bool, device=pad_m.device)
        sy, ss = self.sy[:k, :k], self.ss[:k, :k]
        age = (torch.arange(k, device=sy.device) - self.head) % m  # 0 = oldest
        lower = torch.where(age[:, None] > age[None, :], sy, torch.zeros_like(sy))
        dg = sy.diagonal()
        t = self.theta * ss + (lower / dg) @ lower.T
        chol, info = torch.linalg.cholesky_ex(t)
        t_inv = torch.cholesky_inverse(chol)
        a12 = (lower.T / dg[:, None]) @ t_inv  # D^-1 L^T T^-1
        m11 = torch.diag(-1 / dg) + a12 @ (lower / dg)
        for (r, c), mb, nb in (((0, 0), m11, torch.diag(-dg)), ((0, m), a12, lower.T),
                               ((m, 0), a12.T, lower), ((m, m), t_inv, self.theta * ss)):
            pad_m[r:r + k, c:c + k], pad_n[r:r + k, c:c + k] = mb, nb
        ok = (info == 0) & (dg > 0).all() & torch.isfinite(pad_m).all()
        return torch.where(ok, pad_m, torch.zeros_like(pad_m)), pad_n, ok

    def free_gram(self, free: Tensor, *, gather: bool) -> Tensor:
        """W^T Z Z^T W for the free variables (``free`` (n,): 1 free, 0 fixed): (2m, 2m) float64.

        With ``gather`` (on the CPU, where counting the fixed variables costs nothing) and fewer
        fixed variables than free ones, it is W^T W (kept from the pushes) minus the fixed rows'
        product, as L-BFGS-B's incremental update avoids a pass over all free variables.
        """
        small = self.sy.dtype
        fixed = (free == 0).nonzero().squeeze(1) if gather else None
        if fixed is not None and 2 * fixed.numel() < free.numel():
            g = torch.cat([torch.cat([self.yy, self.sy.T], 1), torch.cat([self.sy, self.ss], 1)])
            rows = self.w.index_select(1, fixed)
            g = g - (rows @ rows.T).to(small)
        else:
            g, chunk = self.sy.new_zeros((2 * self.m, 2 * self.m)), CHUNK if gather else CHUNK_ALL
            for a in range(0, self.w.shape[1], chunk):
                part = self.w[:, a:a + chunk]
                g += ((part * free[a:a + chunk].to(part.dtype)) @ part.T).to(small)
        s = self.scale()
        return g * s[:, None] * s[None, :]


def _cauchy_point(x: Tensor, g: Tensor, mem: _Memory, mid: Tensor, lo: float, hi: float, *,
                  host_checks: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The generalized Cauchy point x^c (n,), the variables free at x^c (n,) bool, and
    c = W^T (x^c - x) (2m,); ``mid`` is M (2m, 2m). With ``host_checks`` the breakpoints are
    scanned block by block until one holds x^c (the smallest few first), else all of them."""
    fixed = ((x <= lo) & (g >= 0)) | ((x >= hi) & (g <= 0))  # at a bound, pushed outwards
    # -g, zero where -g points out of the box: there P(x - t g) - x = clamp(-g, lo - x, hi - x) is 0
    d = -g * torch.sign((-g).clamp(lo - x, hi - x).abs())
    bound = lo + (hi - lo) * 0.5 * (1 + torch.sign(d))
    t = _gap(x, d, lo, hi) / d.abs()  # the breakpoints; d = 0 gives +inf
    d2 = (d * d).sum(dtype=mid.dtype)
    p0 = mem.wt(d)
    f2_org = mem.theta * d2 - p0 @ mid @ p0
    found = None
    if host_checks and x.numel() > FIRST_BLOCK:  # x^c usually lies within the first few breakpoints
        ts, order = torch.topk(t, FIRST_BLOCK, largest=False, sorted=True)
        found, jstar, tsum = _scan(ts, order, d, mem, mid, d2, p0, f2_org, early_exit=True)
    if found is None or not found:
        ts, order = torch.sort(t)
        found, jstar, tsum = _scan(ts, order, d, mem, mid, d2, p0, f2_org, early_exit=host_checks)
    # no segment holds a minimiser: every breakpoint is passed (or d = 0 and x^c = x)
    last = torch.isfinite(ts[-1])
    tsum = torch.where(found, tsum, torch.where(last, ts[-1].to(tsum.dtype), 0.0))
    jstar = torch.where(found, jstar, torch.where(last, order.numel(), 0))
    passed = torch.zeros_like(fixed).scatter_(0, order, torch.arange(order.numel(), device=x.device) < jstar)
    xcp = torch.where(passed, bound, (x + tsum.to(x.dtype) * d).clamp(lo, hi))
    return xcp, ~fixed & ~passed, mem.wt(xcp - x)


def _scan(ts: Tensor, order: Tensor, d: Tensor, mem: _Memory, mid: Tensor, d2: Tensor, p0: Tensor,
          f2_org: Tensor, *, early_exit: bool) -> tuple[Tensor, Tensor, Tensor]:
    """First segment of the sorted breakpoints ``ts`` (variables ``order``) that holds the
    model's minimiser along the path: (found, segment index j*, the step t at x^c), all 0-dim.

    Segment j starts after j breakpoints, at T_j = ts[j - 1] (T_0 = 0), and ends at ts[j].
    """
    small, theta, model = mid.dtype, mem.theta, mem.col > 0
    scale, chunk = mem.scale().to(mem.w.dtype), CHUNK if early_exit else CHUNK_ALL
    carry_dd, carry_dw, carry_tdw = d2.new_zeros(()), p0.new_zeros(p0.shape), p0.new_zeros(p0.shape)
    found = torch.zeros((), dtype=torch.bool, device=ts.device)
    jstar = torch.zeros((), dtype=torch.long, device=ts.device)
    tsum = d2.new_zeros(())
    before = ts.new_zeros(1)
    for a in range(0, ts.numel(), chunk):
        tc, oc = ts[a:a + chunk], order[a:a + chunk]
        dc = d.index_select(0, oc)
        dd = (dc * dc).to(small)
        d2j = d2 - (carry_dd + dd.cumsum(0) - dd)  # sums over the breakpoints passed before segment j
        start = torch.cat([before, tc[:-1]]).to(small)
        f2, f1 = theta * d2j, -d2j
        if model:  # B = theta I - W M W^T; with no pairs yet (B = I) only the sums of d^2 matter
            # the (2m, C) columns stay in the image's dtype; the running sums and M in float64. The
            # scans run along the last dimension: on CUDA a cumsum over the first dimension of a
            # (C, 2m) tensor is a serial scan per column (benchmarks/README.md, optimiser on a GPU)
            cols = mem.w.index_select(1, oc) * scale[:, None]
            dw = dc.to(cols.dtype) * cols  # d_i w_i
            tdw = torch.where(torch.isfinite(tc), tc, 0.0).to(cols.dtype) * dw
            pj = (p0 - carry_dw).to(dw.dtype)[:, None] - (dw.cumsum(1) - dw)
            wcj = carry_tdw.to(dw.dtype)[:, None] + (tdw.cumsum(1) - tdw)
            mpj = mid.T.to(dw.dtype) @ pj  # (p_j^T M)^T
            f2, f1 = f2 - (mpj * pj).sum(0), f1 - (mpj * wcj).sum(0)
            carry_dw, carry_tdw = carry_dw + dw.sum(1, dtype=small), carry_tdw + tdw.sum(1, dtype=small)
        f1 = f1 + start * f2
        dtm = -f1 / torch.maximum(f2, EPS64 * f2_org)
        hold = torch.isfinite(start) & (dtm < tc.to(small) - start)
        first = hold.to(torch.uint8).argmax()
        take = hold.any() & ~found
        jstar = torch.where(take, a + first, jstar)
        at = first.reshape(1)  # index_select: indexing by a device tensor would read it on the host
        tsum = torch.where(take, (start.index_select(0, at) + dtm.index_select(0, at).clamp(min=0))[0], tsum)
        found = found | take
        carry_dd = carry_dd + dd.sum()
        before = tc[-1:]
        if early_exit and bool(found):
            break
    return found, jstar, tsum


def _used(a: Tensor, k: int, m: int) -> Tensor:
    """The rows (and columns) of the k used slots of a padded (2m,) or (2m, 2m) tensor."""
    idx = [slice(0, k), slice(m, m + k)]
    if a.dim() == 1:
        return torch.cat([a[i] for i in idx])
    return torch.cat([torch.cat([a[i, j] for j in idx], dim=1) for i in idx])


def _subspace_point(x: Tensor, g: Tensor, xcp: Tensor, free: Tensor, c: Tensor, mem: _Memory, mid: Tensor,
                    nmat: Tensor, ok: Tensor, lo: float, hi: float, *, host_checks: bool) -> tuple[Tensor, Tensor]:
    """x^c moved to the minimiser of the model over the free variables, kept in the box, and
    whether the model was usable (``ok`` and K nonsingular); if not, the step of B = theta I."""
    k, m = mem.col, mem.m
    th = mem.theta.to(x.dtype)
    keep = free.to(x.dtype)  # masks by multiplication, as in _gap
    r = -(g + th * (xcp - x) - mem.wv(mid @ c)) * keep
    kmat = _used(nmat - mem.free_gram(keep, gather=host_checks) / mem.theta, k, m)
    u_k, info = torch.linalg.solve_ex(kmat, _used(mem.wt(r), k, m))
    ok = ok & (info == 0) & torch.isfinite(u_k).all()
    u_k = torch.where(ok, u_k, torch.zeros_like(u_k))
    u = c.new_zeros(2 * m)
    u[:k], u[m:m + k] = u_k[:k], u_k[k:]
    step = (r + mem.wv(u) / th) / th * keep
    projected = (xcp + step).clamp(lo, hi)
    centre = 0.5 * (lo + hi)  # where the fixed variables are put for the test of reaching a bound
    probe = centre + (xcp + step - centre) * keep
    hit = (probe.amin() <= lo) | (probe.amax() >= hi)
    # Morales-Nocedal: keep the projection if it descends, else stop at the first bound on the way
    truncate = hit & (((projected - x) * g).sum() > 0)
    if host_checks and not bool(truncate):
        return projected, ok
    ratio = _gap(xcp, step, lo, hi).clamp(min=0) / step.abs()  # +inf where the step is 0
    alpha = ratio.amin().clamp(max=1)
    bound = lo + (hi - lo) * 0.5 * (1 + torch.sign(step))
    truncated = torch.where((ratio <= alpha) & (alpha < 1), bound, xcp + alpha.to(x.dtype) * step).clamp(lo, hi)
    return torch.where(truncate, truncated, projected), ok


def _direction(x: Tensor, g: Tensor, mem: _Memory, lo: float, hi: float, *, first: bool,
               host_checks: bool) -> tuple[Tensor, Tensor]:
    """The search direction d = x_bar - x (n,) and, stacked (3,) in float64: g^T d, the largest
    feasible step along d, and 1 if the L-BFGS matrix was usable (else it was replaced by theta I)."""
    mid, nmat, ok = mem.middle()
    xcp, free, c = _cauchy_point(x, g, mem, mid, lo, hi, host_checks=host_checks)
    z = xcp
    if mem.col:
        z, ok = _subspace_point(x, g, xcp, free, c, mem, mid, nmat, ok, lo, hi, host_checks=host_checks)
    d = z - x
    if first:
        stpmx = torch.ones((), dtype=mid.dtype, device=x.device)
    else:
        stpmx = (_gap(x, d, lo, hi).clamp(min=0) / d.abs()).amin().clamp(max=1e10).to(mid.dtype)
    return d, torch.stack([(g @ d).to(mid.dtype), stpmx, ok.to(mid.dtype)])


def minimize_lbfgsb(evaluate: Evaluate, x0: Tensor, *, lower: float = 0.0, upper: float = 1.0,
                    history_size: int = 20, ftol: float = 0.0, gtol: float = 0.0, max_line_search: int = 20,
                    host_checks: bool | None = None) -> LbfgsbEnd:
    """Minimise f over ``lower <= x <= upper`` from ``x0`` (any shape, clamped into the box).

    Runs until it converges, the line search fails, or ``evaluate`` raises (the caller's
    budget, a callback): the caller keeps the record of evaluations and the best point.

    The iterate, the gradient and the directions are kept in float64, as scipy keeps them, and
    ``evaluate`` receives float64 points (to be rounded to the function's own precision): in
    float32 an iterate cannot take steps below half a unit in the last place of its pixels,
    and late in a run the steps that L-BFGS asks for are that small (``benchmarks/README.md``,
    optimiser). The stored pairs stay in ``x0``'s dtype.

    Args:
        evaluate: f, its gradient and extra device scalars at x (``Evaluate``).
        x0: the starting point; its device is the run's, its dtype the stored pairs'.
        lower, upper: the bounds of every element.
        history_size: m, the number of (s, y) pairs kept (scipy's ``maxcor``).
        ftol: stop when (f_k - f_k+1) <= ftol * max(|f_k|, |f_k+1|, 1) (scipy's ``ftol``; 0 stops
            only when an iteration does not decrease f).
        gtol: stop when max |P(x - g) - x| <= gtol (scipy's ``gtol``).
        max_line_search: evaluations per line search before the memory is reset (``maxls``).
        host_checks: let the direction read small device values on the host to skip work (stop
            the breakpoint scan at the first block that holds the Cauchy point; form the free
            variables' W^T Z Z^T W from the fixed ones when they are fewer). The iterates are
            the same either way. Default: on the CPU only, where reading costs nothing.

    Returns:
        Why it stopped: ``converged`` (projected gradient or progress test) or ``line_search``
        (no step with sufficient decrease, even from the steepest-descent model).
    """
    shape, lo, hi = x0.shape, float(lower), float(upper)
    checks = x0.device.type == "cpu" if host_checks is None else host_checks
    small = torch.float64 if x0.device.type != "mps" else torch.float32
    x = x0.detach().reshape(-1).to(small).clamp(lo, hi)
    f, g, (pg,) = evaluate(x.view(shape), lambda xe, ge: projected_gradient_norm(xe, ge, lo, hi)[None])
    g = g.reshape(-1).to(small)
    if pg <= gtol:
        return LbfgsbEnd("converged", f"the projected gradient is {pg:.3g} at the start", 0)
    mem = _Memory(x.numel(), history_size, storage=x0.dtype, small=small, device=x0.device)
    iteration = 0
    while True:
        d, known = _direction(x, g, mem, lo, hi, first=iteration == 0, host_checks=checks)
        step = _line_search(evaluate, x.view(shape), f, d.view(shape), known, lo, hi, max_line_search)
        if isinstance(step, str):  # no acceptable step: L-BFGS-B retries once from B = theta I
            if mem.col == 0:
                return LbfgsbEnd("line_search", f"the line search failed ({step}) in iteration "
                                 f"{iteration + 1} with the steepest-descent model", iteration)
            mem.reset()
            continue
        xt, ft, gt, stp, dr, slope0, pg, usable, warning = step
        iteration += 1
        if not usable:  # the pairs stopped being positive definite: start the memory afresh
            mem.reset()
        if pg <= gtol:
            return LbfgsbEnd("converged", f"the projected gradient is {pg:.3g} after {iteration} iterations",
                             iteration)
        if f - ft <= ftol * max(abs(f), abs(ft), 1.0):  # with a search warning, as L-BFGS-B does
            why = f"the line search found no lower loss: {warning}" if warning else "no further progress"
            return LbfgsbEnd("converged", f"the loss went from {f:.7g} to {ft:.7g} in iteration {iteration} "
                             f"({why})", iteration)
        gt = gt.reshape(-1).to(small)
        if dr > EPS64 * -slope0 * stp:  # else skip the update: the curvature along s is not positive
            mem.push(xt.reshape(-1) - x, gt - g, dr)
        x, f, g = xt.reshape(-1), ft, gt


def _line_search(evaluate: Evaluate, x: Tensor, f: float, d: Tensor, known: Tensor, lo: float, hi: float,
                 max_evals: int) -> str | tuple[Tensor, float, Tensor, float, float, float, float, bool, str]:
    """Moré–Thuente along d from x (f = f(x)): the accepted (x_t, f_t, g_t, step, s^T y, g^T d,
    projected gradient norm at x_t, whether the memory was usable, the search's warning or ""),
    or why it failed."""
    def extra(xe: Tensor, ge: Tensor) -> Tensor:
        return torch.cat([torch.stack([ge.reshape(-1) @ d.reshape(-1), projected_gradient_norm(xe, ge, lo, hi)]),
                          known])

    xt, stp, search, slope0 = (x + d).clamp(lo, hi), 1.0, None, 0.0
    for evals in range(1, max_evals + 1):
        ft, gt, (slope, pg, slope0, stpmx, usable) = evaluate(xt, extra)
        if search is None:
            if slope0 >= 0:  # L-BFGS-B checks this before evaluating; here it rides with the evaluation
                return f"g^T d = {slope0:.3g} is not a descent direction"
            # x_bar is in the box, so the unit step is feasible even if rounding puts stpmx just below 1
            search = MoreThuente(f, slope0, 1.0, stpmax=max(stpmx, 1.0))
        state = search.update(ft, slope)
        if state != "evaluate":
            return xt, ft, gt, stp, (slope - slope0) * stp, slope0, pg, usable > 0.5, search.message
        stp = search.stp
        xt = (x + stp * d).clamp(lo, hi)
    return f"no sufficient decrease in {max_evals} evaluations"

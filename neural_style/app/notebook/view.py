"""What the notebook panel draws, as pure functions: the preview PNG, the loss curve (an inline
SVG, so no plotting library runs in the loop), the copy button, status lines, and whether a
browser is there to show widgets at all."""

from __future__ import annotations

import html
import io
import itertools
import math
import os
import shlex
import sys
from typing import Any, Sequence

from torch import Tensor

from ...core.images import to_pil

PANEL_ENV = "NEURAL_STYLE_PANEL"
# Text that wraps anywhere and scrolls past a few lines, so a long error never widens the panel.
WRAP = "overflow-wrap:anywhere;word-break:break-word;white-space:normal;max-height:6em;overflow-y:auto"


def preview_png(image: Tensor, width: int) -> bytes:
    """``image`` (1, 3, H, W) in [0, 1] as PNG bytes, resized to ``width`` pixels wide."""
    pil = to_pil(image)
    pil = pil.resize((width, max(1, round(pil.height * width / pil.width))))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def loss_curve_svg(losses: Sequence[float], width: int = 360, height: int = 90) -> str:
    """The lowest loss so far at each evaluation, as an SVG line on a log axis ('' before two
    finite losses).

    The running minimum is the loss of the image the run would return at that point; a line
    search's trial evaluations, which can lie orders of magnitude above it, neither show nor set
    the axis. The axis is labelled with the first and the lowest value, the line's end with the
    best loss and the evaluation count.
    """
    best = list(itertools.accumulate((v if math.isfinite(v) and v > 0 else math.inf for v in losses), min))
    points = [(i, math.log10(v)) for i, v in enumerate(best, 1) if math.isfinite(v)]
    if len(points) < 2:
        return ""
    left, right, top, bottom = 60, width - 8, 8, height - 18
    low, high = points[-1][1], points[0][1]
    span, steps = (high - low) or 1.0, max(len(losses) - 1, 1)

    def xy(i: int, y: float) -> str:
        return f"{left + (right - left) * (i - 1) / steps:.1f},{bottom - (bottom - top) * (y - low) / span:.1f}"

    line = " ".join(xy(i, y) for i, y in points)
    label = "font-size='11' font-family='sans-serif' fill='#444'"
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
            f"aria-label='loss curve'>"
            f"<rect x='{left}' y='{top}' width='{right - left}' height='{bottom - top}' fill='none' stroke='#ccc'/>"
            f"<polyline points='{line}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>"
            f"<text x='{left - 4}' y='{top + 8}' text-anchor='end' {label}>{10 ** high:.3g}</text>"
            f"<text x='{left - 4}' y='{bottom}' text-anchor='end' {label}>{10 ** low:.3g}</text>"
            f"<text x='{left}' y='{height - 4}' {label}>best loss so far (log scale): {10 ** low:.4g} after "
            f"{len(losses)} evaluations</text></svg>")


def command_html(text: str) -> str:
    """A shell command as HTML that wraps only between its words: each word (an option such as
    ``--size``, a path) stays on one line, so no option is ever split at its hyphens."""
    words = [shlex.quote(word) for word in shlex.split(text)]
    spans = " ".join(f"<span style='white-space:nowrap'>{html.escape(word)}</span>" for word in words)
    return (f"<div class='neural-style-command' style='font-family:var(--jp-code-font-family,monospace);"
            "font-size:12px;line-height:1.5;white-space:normal;word-break:normal;overflow-wrap:normal;"
            "overflow-x:auto;border:1px solid #ccc;border-radius:2px;padding:4px 6px;user-select:all'>"
            f"{spans}</div>")


def copy_button(text: str, label: str = "Copy as command") -> str:
    """An HTML button that puts ``text`` on the clipboard when clicked (in the browser, with no
    round trip to the kernel, so the click still counts as the user's gesture)."""
    script = ("navigator.clipboard.writeText(this.dataset.text)"
              ".then(() => { this.textContent = 'Copied'; })"
              ".catch(() => { this.textContent = 'Select the text and copy it'; })")
    return (f"<button class='jupyter-button' style='height:28px' data-text=\"{html.escape(text)}\" "
            f"onclick=\"{html.escape(script)}\">{html.escape(label)}</button>")


def status_html(text: str, error: bool = False) -> str:
    """A status line (escaped), red for an error, wrapped so it never widens the panel."""
    colour = "color:#b00;" if error else ""
    return f"<div style='{colour}{WRAP}'>{html.escape(text)}</div>"


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in a ``FileUpload`` value: a sequence of dicts with ``name``
    and ``content`` (ipywidgets 8), or a dict from names to dicts with ``content`` (ipywidgets 7,
    as on Colab)."""
    if isinstance(value, dict):
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]


def front_end_connected() -> bool:
    """Whether widgets shown now would reach a live front-end (JupyterLab, Notebook, VS Code).

    False in a head-less run (papermill, nbclient, nbconvert --execute, a plain script). The
    environment variable ``NEURAL_STYLE_PANEL=1`` (or ``0``) overrides the guess. Otherwise the
    kernel must run under IPython and either have been started by a Jupyter server for a
    notebook session (``JPY_SESSION_NAME``, set by jupyter_server and VS Code, not by
    papermill), run on Colab, or have a widget front-end attached (ipywidgets' control channel
    is open).
    """
    forced = os.environ.get(PANEL_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    if os.environ.get("JPY_SESSION_NAME") or "google.colab" in sys.modules:
        return True
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    return getattr(Widget, "_control_comm", None) is not None

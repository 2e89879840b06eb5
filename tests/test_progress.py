"""Progress displays show the best loss so far, never a line search's trial (``app/progress.py``)."""

from __future__ import annotations

import itertools

import pytest
import torch

from neural_style.app.progress import Bar, LogLines
from neural_style.optim.record import Record

# A run's losses as L-BFGS-B evaluates them: trial points of the line search (1e11, 5e10) far above.
LOSSES = [3.3e8, 1.012e11, 2.9e8, 5e10, 1.5e8, 1.4e8]


def run_record(callback) -> None:
    record = Record([], budget=len(LOSSES), total_steps=len(LOSSES), callback=callback)
    for loss in LOSSES:
        record.add({"total": loss}, torch.zeros(1, 3, 2, 2))


def test_the_bar_shows_the_best_loss_so_far() -> None:
    bar, shown = Bar("run", terminal=True), []

    def callback(info):
        bar(info)
        shown.append(bar.bar.postfix)

    run_record(callback)
    bar.close()
    best = list(itertools.accumulate(LOSSES, min))
    assert shown == [f"best loss={b:.4g}" for b in best]
    assert not any("e+10" in s or "e+11" in s for s in shown)


def test_log_lines_show_the_best_loss_so_far(capsys: pytest.CaptureFixture[str]) -> None:
    run_record(LogLines("x"))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("x: evaluation 1 of 6, best loss 3.3e+08")
    assert lines[-1].startswith("x: evaluation 6 of 6, best loss 1.4e+08")
    assert not any("e+10" in line or "e+11" in line for line in lines)

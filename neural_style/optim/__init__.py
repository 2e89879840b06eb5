"""Optimising an image: the record of a run, its best image and its typed stop (``record``), the
optimisers by name (``optimizers``), and L-BFGS-B on the image's device (``lbfgsb``, with the
Moré–Thuente ``line_search``)."""

from .optimizers import OPTIMIZERS, Optimizer, OptimizerName, optimise
from .record import CONVERGED_GAIN, Record, RunResult, StepInfo, Stop, StopKind, SynthesisNotice, converged, tail_gain

__all__ = ["OPTIMIZERS", "Optimizer", "OptimizerName", "optimise", "Record", "RunResult", "StepInfo", "Stop",
           "StopKind", "SynthesisNotice", "CONVERGED_GAIN", "converged", "tail_gain"]

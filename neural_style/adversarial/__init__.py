"""The homework's "hardcore" option: per-layer pixel-level discriminators instead of Gram matching
(``discriminators``), trained inside the image's optimisation loop (``loop``)."""

from .discriminators import DISCRIMINATORS, moment_distances
from .loop import AdversarialResult, adversarial_synthesis

__all__ = ["DISCRIMINATORS", "moment_distances", "AdversarialResult", "adversarial_synthesis"]

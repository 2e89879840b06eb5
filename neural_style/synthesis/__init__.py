"""Image synthesis by optimisation (Gatys et al.): the objective (``objective``), a run planned from
sizes and settings alone (``plan``, with ``schedule`` and ``memory``), the run (``run``:
``synthesize``), colour preservation (``colour``) and feature inversion (``inversion``)."""

from .inversion import invert, psnr
from .objective import Objective, style_distance
from .plan import SynthesisPlan, plan_synthesis
from .run import SynthesisResult, synthesize

__all__ = ["invert", "psnr", "Objective", "style_distance", "SynthesisPlan", "plan_synthesis", "SynthesisResult",
           "synthesize"]

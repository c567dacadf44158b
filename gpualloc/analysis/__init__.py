"""The questions users ask, each answered by calling ``optimizer.solve``: explain, re-plan,
what-if and sweeps, marginal values, honourable credits, min_share floors, Pareto curves,
robust plans, bench."""

from .credits import CreditsReport, honourable_credits, solve_custom
from .explain import Explanation, JobReason, Relaxation, Requirement, explain
from .floors import FloorRelaxation, floor_relaxation
from .marginal import CapReport, MarginalValue, cap_report, marginal_values
from .pareto import ParetoCurve, ParetoPoint, pareto
from .robust import CaseOutcome, RobustResult, robust
from .whatif import ScenarioResult, SweepPoint, run_study, sweep

__all__ = [
           "CapReport",
           "CaseOutcome",
           "CreditsReport",
           "Explanation",
           "FloorRelaxation",
           "JobReason",
           "MarginalValue",
           "ParetoCurve",
           "ParetoPoint",
           "Relaxation",
           "Requirement",
           "RobustResult",
           "ScenarioResult",
           "SweepPoint",
           "cap_report",
           "explain",
           "floor_relaxation",
           "honourable_credits",
           "marginal_values",
           "pareto",
           "robust",
           "run_study",
           "solve_custom",
           "sweep",
]

"""The questions users ask, each answered by calling ``optimizer.solve``: explain, re-plan,
what-if and sweeps, marginal values, honourable credits, robust plans, bench."""

from .credits import CreditsReport, honourable_credits, solve_custom
from .explain import Explanation, JobReason, Relaxation, Requirement, explain
from .marginal import CapReport, MarginalValue, cap_report, marginal_values
from .robust import CaseOutcome, RobustResult, robust
from .whatif import ScenarioResult, SweepPoint, run_study, sweep

__all__ = ["CapReport", "CaseOutcome", "CreditsReport", "Explanation", "JobReason",
           "MarginalValue", "Relaxation", "Requirement", "RobustResult", "ScenarioResult",
           "SweepPoint", "cap_report", "explain", "honourable_credits", "marginal_values",
           "robust", "run_study", "solve_custom", "sweep"]

"""The questions users ask, each answered by calling ``optimizer.solve``: explain, re-plan,
what-if and sweeps, marginal values, honourable credits, bench."""

from .credits import CreditsReport, honourable_credits, solve_custom
from .explain import Explanation, JobReason, Relaxation, Requirement, explain
from .marginal import CapReport, MarginalValue, cap_report, marginal_values
from .whatif import ScenarioResult, SweepPoint, run_study, sweep

__all__ = ["CapReport", "CreditsReport", "Explanation", "JobReason", "MarginalValue",
           "Relaxation", "Requirement", "ScenarioResult", "SweepPoint", "cap_report", "explain",
           "honourable_credits", "marginal_values", "run_study", "solve_custom", "sweep"]

"""Algorithms: the formulation, solver backends, and the ``solve`` entry point."""

from .backends import (
    Backend,
    BackendUnavailable,
    Progress,
    SolveParams,
    available_backends,
    backend_names,
    get_backend,
)
from .formulation import LinearModel, build
from .solve import STRATEGIES, choose_strategy, solve

__all__ = [
    "STRATEGIES",
    "Backend",
    "BackendUnavailable",
    "LinearModel",
    "Progress",
    "SolveParams",
    "available_backends",
    "backend_names",
    "build",
    "choose_strategy",
    "get_backend",
    "solve",
]

# Explanations and re-planning (``solve(..., previous=, now=, stability=)``).
from .explain import Explanation, JobReason, Relaxation, Requirement, explain

__all__ += ["Explanation", "JobReason", "Relaxation", "Requirement", "explain"]

# What-if studies, sweeps, marginal values, honourable credits and the cap report.
from .credits import CreditsReport, honourable_credits, solve_custom  # noqa: E402
from .marginal import CapReport, MarginalValue, cap_report, marginal_values  # noqa: E402
from .scenarios import Scenario, apply, load_scenarios  # noqa: E402
from .whatif import ScenarioResult, SweepPoint, run_study, sweep  # noqa: E402

__all__ += ["CapReport", "CreditsReport", "MarginalValue", "Scenario", "ScenarioResult",
            "SweepPoint", "apply", "cap_report", "honourable_credits", "load_scenarios",
            "marginal_values", "run_study", "solve_custom", "sweep"]

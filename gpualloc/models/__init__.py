"""The problem and its semantics: schema, catalog, files, plans, validator, metrics.

No solver is imported here.
"""

from .catalog import BUILTIN, DEFAULT_REGIME, EXPORT_CLASSES, REGIMES, classify
from .errors import InstanceError, InstanceWarning, Issue
from .instance import (
    Accelerator,
    Cap,
    CapacityChange,
    Cluster,
    EligibilityRule,
    Horizon,
    Instance,
    Job,
    Objective,
    Option,
    Pool,
    Scope,
    Startup,
    Tranche,
)
from .io import atomic_write_text, instance_from_mapping, load_instance, save_instance
from .plan import (
    Assignment,
    Ineligible,
    Plan,
    SolveStatus,
    compute_gap,
)
from .planfile import load_plan, plan_to_dict, save_plan

__all__ = [
    "BUILTIN",
    "DEFAULT_REGIME",
    "EXPORT_CLASSES",
    "REGIMES",
    "Accelerator",
    "Assignment",
    "Cap",
    "CapacityChange",
    "Cluster",
    "EligibilityRule",
    "Horizon",
    "Ineligible",
    "Instance",
    "InstanceError",
    "InstanceWarning",
    "Issue",
    "Job",
    "Objective",
    "Option",
    "Plan",
    "Pool",
    "Scope",
    "SolveStatus",
    "Startup",
    "Tranche",
    "atomic_write_text",
    "classify",
    "compute_gap",
    "instance_from_mapping",
    "load_instance",
    "load_plan",
    "plan_to_dict",
    "save_instance",
    "save_plan",
]

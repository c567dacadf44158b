"""Instance -> Plan: the neutral model (``model``), the solver adapters (``backends``), the ways
of attacking a model (``strategies``) and the one pipeline, ``solve``."""

from .backends import (
    Backend,
    BackendUnavailable,
    Progress,
    SolveParams,
    available_backends,
    backend_names,
    get_backend,
)
from .model import LinearModel, build
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

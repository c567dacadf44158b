"""Instance -> Plan: the neutral model (``model``), the solver adapters (``backends``), the ways
of attacking a model (``strategies``) and the one pipeline, ``solve``."""

from .backends import (
    Backend,
    BackendUnavailable,
    Capabilities,
    Progress,
    SolveParams,
    available_backends,
    backend_names,
    get_backend,
)
from .model import LinearModel, build
from .model.estimate import ModelEstimate, ModelTooLarge, check_memory, estimate
from .solve import available_cores, solve
from .stop import Stop, StopRequested
from .strategies import STRATEGIES, choose_strategy

__all__ = [
    "STRATEGIES",
    "Backend",
    "BackendUnavailable",
    "Capabilities",
    "LinearModel",
    "ModelEstimate",
    "ModelTooLarge",
    "Progress",
    "SolveParams",
    "Stop",
    "StopRequested",
    "available_backends",
    "available_cores",
    "backend_names",
    "build",
    "check_memory",
    "choose_strategy",
    "estimate",
    "get_backend",
    "solve",
]

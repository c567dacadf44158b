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
from .solve import solve

__all__ = [
    "Backend",
    "BackendUnavailable",
    "LinearModel",
    "Progress",
    "SolveParams",
    "available_backends",
    "backend_names",
    "build",
    "get_backend",
    "solve",
]

"""Solver adapters behind one small Protocol, looked up by name."""

from __future__ import annotations

from collections.abc import Callable

from .base import (
    Backend,
    BackendResult,
    BackendUnavailable,
    Capabilities,
    Progress,
    ProgressCallback,
    SolveParams,
)
from .cpsat import CpSatBackend
from .mip import CbcBackend, HighsBackend

_REGISTRY: dict[str, Callable[[], Backend]] = {
    "cpsat": CpSatBackend,
    "cbc": CbcBackend,
    "highs": HighsBackend,
}


def _greedy() -> Backend:
    from .greedy import GreedyBackend

    return GreedyBackend()


def _interval() -> Backend:
    from .interval import IntervalBackend

    return IntervalBackend()


_REGISTRY["greedy"] = _greedy
_REGISTRY["interval"] = _interval


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Make a backend available under ``name``."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    """Every registered backend, installed or not."""
    return list(_REGISTRY)


def available_backends() -> list[str]:
    """Registered backends whose solver can run here."""
    return [name for name, make in _REGISTRY.items() if make().available()]


def get_backend(name: str) -> Backend:
    """A fresh backend instance; raises BackendUnavailable with a clear message."""
    make = _REGISTRY.get(name)
    if make is None:
        raise BackendUnavailable(f"unknown backend {name!r}; choose from {', '.join(_REGISTRY)}")
    backend = make()
    if not backend.available():
        raise BackendUnavailable(f"backend {name!r} is not installed here "
                                 f"(available: {', '.join(available_backends()) or 'none'})")
    return backend


__all__ = [
    "Backend",
    "BackendResult",
    "BackendUnavailable",
    "Capabilities",
    "Progress",
    "ProgressCallback",
    "SolveParams",
    "available_backends",
    "backend_names",
    "get_backend",
    "register",
]

"""The small contract every solver adapter meets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..model.formulation import LinearModel

RawStatus = Literal["optimal", "feasible", "infeasible", "unknown"]


@dataclass(frozen=True)
class Progress:
    """A progress report: best objective so far, proven bound, seconds since the start."""

    objective: float | None
    bound: float | None
    seconds: float

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, (self.bound - self.objective) / max(1.0, abs(self.bound)))


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SolveParams:
    """Parameters passed to every backend."""

    time_limit: float | None = 60.0
    seed: int = 0
    workers: int = 1
    gap_tolerance: float = 1e-6
    log: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"time_limit": self.time_limit, "seed": self.seed, "workers": self.workers,
                "gap_tolerance": self.gap_tolerance, **self.extra}


@dataclass
class BackendResult:
    """What a backend found: a 0/1 vector (or None), the solver's status and bound.

    ``bound`` bounds ``sum objective * x`` from above, without the model's ``objective_offset``.
    """

    status: RawStatus
    values: list[float] | None = None
    bound: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A solver adapter: it reads the neutral model and returns values and a bound."""

    name: str

    def available(self) -> bool:
        """Whether the solver can run here."""
        ...

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None) -> BackendResult:
        """Maximise the model's objective; ``start`` is an optional 0/1 warm start."""
        ...


class BackendUnavailable(RuntimeError):
    """The requested solver is not installed or cannot run."""

"""The small contract every solver adapter meets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..model.formulation import LinearModel
from ..stop import Stop

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
    """Parameters passed to every backend and strategy.

    ``time_limit`` is the caller's whole budget, recorded in the plan; what a backend may still
    spend is its ``Stop``'s ``remaining()``. The typed options below replace free-form option
    dictionaries: ``max_deterministic_time`` and ``linearization_level`` tune CP-SAT (the LNS
    sub-solves use them), ``lns_rounds`` fixes the number of LNS rounds (deterministic runs).
    """

    time_limit: float | None = 60.0
    seed: int = 0
    workers: int = 1
    gap_tolerance: float = 1e-6
    log: bool = False
    max_deterministic_time: float | None = None
    linearization_level: int | None = None
    lns_rounds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time_limit": self.time_limit, "seed": self.seed,
                               "workers": self.workers, "gap_tolerance": self.gap_tolerance}
        for key in ("max_deterministic_time", "linearization_level", "lns_rounds"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def stop(self) -> Stop:
        """A fresh stop for this time limit (for callers that pass none)."""
        return Stop(self.time_limit)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared as data (like linopy's ``SolverFeature``).

    ``proves_bound``: it reports a proven upper bound; ``takes_hint``: it uses a warm start;
    ``stops_on_request``: a ``Stop.request()`` ends its native search within a second or two
    (not only at its time limit); ``deterministic``: same seed and one worker, same answer.
    """

    proves_bound: bool
    takes_hint: bool
    stops_on_request: bool
    deterministic: bool


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
    capabilities: Capabilities

    def available(self) -> bool:
        """Whether the solver can run here."""
        ...

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None, *,
              stop: Stop | None = None) -> BackendResult:
        """Maximise the model's objective; ``start`` is an optional 0/1 warm start. The search
        ends by ``stop`` (default: one for ``params.time_limit``) with its incumbent."""
        ...


class BackendUnavailable(RuntimeError):
    """The requested solver is not installed or cannot run."""

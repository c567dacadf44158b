"""The plan: what runs where and when, and how sure the solver is (DESIGN.md plan file)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .instance import MAX_GPUS, MAX_PERIODS

if TYPE_CHECKING:
    import pandas as pd



class SolveStatus(StrEnum):
    """``optimal`` is a claim backed by a proven bound within the gap tolerance."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


class Assignment(BaseModel):
    """One job run: ``gpus`` of ``accelerator`` on ``cluster`` during periods start..end-1."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    job: str
    cluster: str
    accelerator: str
    gpus: Annotated[int, Field(ge=0, le=MAX_GPUS)]
    start: Annotated[int, Field(ge=0, le=MAX_PERIODS)]
    end: Annotated[int, Field(ge=0, le=MAX_PERIODS)]
    cost: Annotated[float, Field(ge=-1e18, le=1e18)]
    value: Annotated[float, Field(ge=-1e18, le=1e18)]
    option: Annotated[int, Field(ge=0, le=MAX_PERIODS)] | None = None

    @property
    def periods(self) -> int:
        return self.end - self.start


class Ineligible(BaseModel):
    """An option removed before solving because an export rule bars it on a cluster."""

    model_config = ConfigDict(frozen=True)

    job: str
    option: int
    cluster: str
    reason: str


class Plan(BaseModel):
    """A solve result. Carries seed, backend, parameters, runtime, bound and gap.

    ``objective`` is the plan's value (sum of weighted option values minus weighted cost) plus
    ``objective_adjustment`` (zero except when re-planning: minus the stability penalty).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    instance: str
    status: SolveStatus
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    backend: str = ""
    solve_seconds: float = 0.0
    assignments: tuple[Assignment, ...] = ()
    unscheduled: tuple[str, ...] = ()
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    model_size: dict[str, int] = Field(default_factory=dict)
    ineligible: tuple[Ineligible, ...] = ()
    objective_adjustment: float = 0.0
    summary: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_feasible(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)

    def assignment(self, job: str) -> Assignment | None:
        return next((a for a in self.assignments if a.job == job), None)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per assignment (requires pandas)."""
        import pandas as pd

        cols = list(Assignment.model_fields)
        return pd.DataFrame([a.model_dump() for a in self.assignments], columns=cols)


def compute_gap(objective: float | None, bound: float | None) -> float | None:
    """``(bound - objective) / max(1, |bound|)``, or None without both figures."""
    if objective is None or bound is None:
        return None
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


__all__ = ["Assignment", "Ineligible", "Plan", "SolveStatus", "compute_gap"]

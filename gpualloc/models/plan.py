"""The plan: what runs where and when, and how sure the solver is (DESIGN.md plan file)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .instance import MAX_GPUS, MAX_PERIODS

if TYPE_CHECKING:
    import pandas as pd

    from .instance import Instance

# The columns of ``Plan.to_dataframe()`` and of ``gpualloc export --csv``, in order.
# ``end`` is exclusive (the job occupies periods start..end-1); ``start_date``/``end_date``
# (``end_date`` exclusive too) are added when the instance's horizon has a start date.
RECORD_COLUMNS = ("job", "startup", "cluster", "accelerator", "gpus", "start", "end",
                  "periods", "cost", "value", "option")
DATE_COLUMNS = ("start_date", "end_date")

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
    startup: str | None = None  # the job's start-up (filled by the optimizer; optional)

    @property
    def periods(self) -> int:
        return self.end - self.start

    def _key(self) -> tuple[Any, ...]:
        return (self.job, self.cluster, self.accelerator, self.gpus, self.start, self.end,
                self.cost, self.value, self.option)

    def __eq__(self, other: object) -> bool:
        """Equal when everything but ``startup`` (derived from the job) is."""
        if not isinstance(other, Assignment):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


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

    def records(self, instance: Instance | None = None) -> tuple[list[str], list[list[Any]]]:
        """The assignment table: ``RECORD_COLUMNS`` (+ ``DATE_COLUMNS`` when ``instance`` has
        a horizon start) and one row per assignment. The start-up comes from the assignment,
        else from ``instance``."""
        start = instance.horizon.start if instance is not None else None
        columns = [*RECORD_COLUMNS, *(DATE_COLUMNS if start is not None else ())]
        rows = []
        for a in self.assignments:
            startup = a.startup
            if startup is None and instance is not None and a.job in instance.job_by_id:
                startup = instance.job_by_id[a.job].startup
            row = [a.job, startup, a.cluster, a.accelerator, a.gpus, a.start, a.end,
                   a.periods, a.cost, a.value, a.option]
            if instance is not None and start is not None:
                row += [period_date(instance, a.start), period_date(instance, a.end)]
            rows.append(row)
        return columns, rows

    def to_dataframe(self, instance: Instance | None = None) -> pd.DataFrame:
        """One row per assignment with the columns of ``records`` (requires pandas)."""
        import pandas as pd

        columns, rows = self.records(instance)
        return pd.DataFrame(rows, columns=columns)


def period_date(instance: Instance, period: int) -> str:
    """When ``period`` begins (ISO date, or date and time when periods are not whole days);
    period ``periods`` is the horizon's exclusive end. Needs ``instance.horizon.start``."""
    h = instance.horizon
    assert h.start is not None
    when = dt.datetime.combine(h.start, dt.time()) + dt.timedelta(hours=period * h.period_hours)
    return when.date().isoformat() if when.time() == dt.time() else \
        when.isoformat(timespec="minutes")


def compute_gap(objective: float | None, bound: float | None) -> float | None:
    """``(bound - objective) / max(1, |bound|)``, or None without both figures."""
    if objective is None or bound is None:
        return None
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


__all__ = ["DATE_COLUMNS", "RECORD_COLUMNS", "Assignment", "Ineligible", "Plan", "SolveStatus",
           "compute_gap", "period_date"]

"""The backend-neutral linear model's data: placements (one binary each), rows, the model."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, NamedTuple

import numpy as np

from ...models import Assignment, Ineligible
from ..stop import Stop

Sense = Literal["<=", ">=", "=="]
Kind = Literal["assign", "capacity", "precedence", "credits", "cap", "tranche", "floor",
               "limit", "rounding"]


class Placement(NamedTuple):
    """What one binary variable means: job, option, cluster and start period (a named tuple:
    a big model makes a million of them, three times faster than a frozen dataclass)."""

    job: str
    option: int
    cluster: str
    accelerator: str
    gpus: int
    start: int
    periods: int
    cost: float
    value: float  # unweighted option value

    @property
    def end(self) -> int:
        return self.start + self.periods


_INT32_MAX = 2**31 - 1


def int_array(values: Iterable[int] | np.ndarray) -> array:
    """Variable indices as a compact ``array('i')`` (4 bytes each, not a list's 36)."""
    if isinstance(values, array) and values.typecode == "i":
        return values
    if isinstance(values, np.ndarray):
        if values.dtype != np.int32 and len(values) and \
                (values.max() > _INT32_MAX or values.min() < -_INT32_MAX - 1):
            raise OverflowError("a variable index does not fit array('i')")
        return array("i", values.astype(np.int32, copy=False).tobytes())
    return array("i", values)


def float_array(values: Iterable[float] | np.ndarray) -> array:
    """Coefficients as a compact ``array('d')`` (8 bytes each, not a list's 32)."""
    if isinstance(values, array) and values.typecode == "d":
        return values
    if isinstance(values, np.ndarray):
        return array("d", values.astype(np.float64, copy=False).tobytes())
    return array("d", values)


@dataclass(slots=True)
class Row:
    """A linear constraint ``sum coef * x[var] (sense) rhs`` with its origin for reports.

    ``vars`` and ``coefs`` are stored as ``array('i')`` and ``array('d')`` whatever sequence
    they are given as (a big model has tens of millions of entries): they iterate, index and
    slice like lists, and ``np.frombuffer`` reads them without a copy. An assignment converts
    too."""

    kind: Kind
    name: str
    vars: array
    coefs: array
    sense: Sense
    rhs: float
    # capacity rows: (cluster, accelerator, period); their roundings: (cluster, accelerator,
    # period, divisor); tranche: (start-up, first, last); order rows (rule 5 on a long edge):
    # (job, dep)
    key: tuple[str | int, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "vars":
            value = int_array(value)
        elif name == "coefs":
            value = float_array(value)
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        if len(self.vars) != len(self.coefs):
            raise ValueError(f"row {self.name}: {len(self.vars)} vars, {len(self.coefs)} coefs")

    def holds_at_zero(self) -> bool:
        """Whether the row holds with every variable at 0 (what an empty row must do)."""
        return {"<=": self.rhs >= -1e-9, ">=": self.rhs <= 1e-9,
                "==": abs(self.rhs) <= 1e-9}[self.sense]


@dataclass
class LinearModel:
    """Backend-neutral model: binaries ``x[i]`` (one per placement), rows, a max objective."""

    placements: list[Placement] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    by_job: dict[str, list[int]] = field(default_factory=dict)
    ineligible: list[Ineligible] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)  # reasons known before solving
    objective_offset: float = 0.0  # a constant added to the objective (re-planning)
    dropped: int = 0  # placements dropped as unusable by any plan (``model.presolve``)
    _matrix: Any = field(default=None, repr=False, compare=False)  # model.matrix's cache

    @property
    def num_vars(self) -> int:
        return len(self.placements)

    def size(self) -> dict[str, int]:
        return {
            "variables": self.num_vars,
            "constraints": len(self.rows),
            "nonzeros": sum(len(r.vars) for r in self.rows),
        }

    def field(self, name: str, dtype: type = np.int64) -> np.ndarray:
        """One ``Placement`` field of every variable as a numpy array (``"start"``, ...)."""
        return np.fromiter(map(attrgetter(name), self.placements), dtype, self.num_vars)

    def matrix(self, stop: Stop | None = None):  # -> model.matrix.Matrix
        """The shared sparse-matrix view of the rows (built once, cached; see ``matrix``)."""
        from .matrix import matrix

        return matrix(self, stop)

    def forced_jobs(self) -> set[str]:
        """Jobs that must run: those with an ``== 1`` assignment row (mandatory or frozen)."""
        return {self.placements[v].job for r in self.rows
                if r.kind == "assign" and r.sense == "==" for v in r.vars[:1]}

    def trivial_bound(self) -> float:
        """A proven upper bound on ``sum objective * x`` (without ``objective_offset``, like
        every backend's bound): every job at its best placement, ignoring all shared rows."""
        forced = self.forced_jobs()
        jobs = [(job, idx) for job, idx in self.by_job.items() if idx]
        if not jobs:
            return 0.0
        order = np.fromiter((i for _, idx in jobs for i in idx), np.int64)
        firsts = np.cumsum([0] + [len(idx) for _, idx in jobs[:-1]])
        best = np.maximum.reduceat(np.asarray(self.objective, dtype=np.float64)[order], firsts)
        must = np.fromiter((job in forced for job, _ in jobs), bool, len(jobs))
        return float(sum(np.where(must, best, np.maximum(best, 0.0)).tolist(), 0.0))

    def objective_value(self, values: list[float]) -> float:
        return sum(self.objective[i] for i in self.chosen(values))

    def chosen(self, values: list[float]) -> list[int]:
        """The variables set (> 0.5) in ``values``, in index order."""
        if len(values) != self.num_vars:
            raise ValueError(f"{len(values)} values for {self.num_vars} variables")
        return np.flatnonzero(np.asarray(values, dtype=np.float64) > 0.5).tolist()

    def decode(self, values: list[float]) -> list[Assignment]:
        """Assignments of a 0/1 solution vector."""
        out = []
        for i in self.chosen(values):
            p = self.placements[i]
            out.append(Assignment(job=p.job, cluster=p.cluster, accelerator=p.accelerator,
                                  gpus=p.gpus, start=p.start, end=p.end, cost=p.cost,
                                  value=p.value, option=p.option))
        return out

    def encode(self, assignments: list[Assignment]) -> list[float]:
        """A 0/1 vector for a plan's assignments (those the model cannot express are dropped)."""
        index = {(p.job, p.cluster, p.accelerator, p.gpus, p.start, p.periods): i
                 for i, p in enumerate(self.placements)}
        values = [0.0] * self.num_vars
        for a in assignments:
            i = index.get((a.job, a.cluster, a.accelerator, a.gpus, a.start, a.end - a.start))
            if i is not None:
                values[i] = 1.0
        return values

    def check(self, values: list[float], tol: float = 1e-6) -> list[str]:
        """Names of rows that a 0/1 vector violates (for warm-start screening)."""
        if len(values) != self.num_vars:
            raise ValueError(f"{len(values)} values for {self.num_vars} variables")
        return [self.rows[k].name for k in self.matrix().violated(values, tol).tolist()]

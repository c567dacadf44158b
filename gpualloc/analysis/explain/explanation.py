"""The result of ``explain``: ``Explanation`` and the conflicts, relaxations and per-job
reasons it holds, with the number formatting they share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ...models import Instance, Plan
from ...models.format import num, ranges
from ...models.rules import tranche_text

_TOL = 1e-6

RequirementKind = Literal["mandatory", "dependency", "window", "placement", "capacity", "cap",
                          "share", "credits", "tranche", "floor"]
RelaxationKind = Literal["deadline", "capacity", "cap", "share", "credits", "tranche",
                         "tranche_shift", "floor"]
ReasonKind = Literal["ineligible", "no_fit", "predecessor", "displaces", "blocked", "addable",
                     "not_evaluated"]


@dataclass(frozen=True)
class Requirement:
    """One of the conflicting requirements of an infeasible instance."""

    kind: RequirementKind
    name: str
    detail: str

    def __str__(self) -> str:
        return self.detail  # each detail names its subject once ("pool hz-1/H800 has ...")


@dataclass(frozen=True)
class Relaxation:
    """Raise ``target`` by ``amount`` ``unit`` (from ``before`` to ``after``) in ``periods``;
    ``tranche``: tranche ``index`` of start-up ``target`` (``periods``: its periods);
    ``tranche_shift``: that tranche's ``from`` moved ``amount`` periods earlier; ``floor``:
    lower the ``min_share`` of start-up ``target`` by ``amount``."""

    kind: RelaxationKind
    target: str
    amount: float
    unit: str
    before: float | None = None
    after: float | None = None
    periods: tuple[int, int] | None = None
    index: int | None = None  # tranche: which of the start-up's tranches

    def __str__(self) -> str:
        if self.kind == "tranche":
            return (f"{tranche_text(self.target, self.index or 0, periods=self.periods)}: "
                    f"+{_num(self.amount)} credits ({_num(self.before)} -> {_num(self.after)})")
        if self.kind == "tranche_shift":
            return (f"tranche {self.index or 0} of {self.target}: released "
                    f"{_num(self.amount)} period{'s' * (self.amount != 1)} earlier (from "
                    f"period {_num(self.before)} -> {_num(self.after)})")
        if self.kind == "floor":
            return (f"min_share of start-up {self.target}: -{_num(self.amount)} "
                    f"({_num(self.before)} -> {_num(self.after)})")
        when = ""
        if self.periods is not None:
            a, b = self.periods
            when = f" in period {a}" if a == b else f" in periods {a}-{b}"
        what = {"deadline": f"deadline of job {self.target}",
                "capacity": f"pool {self.target}",
                "cap": f"cap {self.target}",
                "share": f"share fraction of cap {self.target}",
                "credits": f"credits of start-up {self.target}"}[self.kind]
        after = "no share limit" if self.kind == "share" and self.after is None \
            else _num(self.after)
        return (f"{what}: +{_num(self.amount)} {self.unit}{when} "
                f"({_num(self.before)} -> {after})")


@dataclass(frozen=True)
class JobReason:
    """Why an unscheduled job is out of the plan."""

    job: str
    reason: ReasonKind
    detail: str
    value: float  # the job's best weighted option value
    displaced: float | None = None  # base objective minus objective with the job forced in
    forced: dict[str, Any] | None = None  # where the forced re-solve put it
    blocking: tuple[str, ...] = ()
    binding: tuple[str, ...] = ()
    displaced_jobs: tuple[str, ...] = ()
    time_limited: bool = False

    def __str__(self) -> str:
        text = f"{self.job} ({self.reason}): {self.detail}"
        return text + (" [time-limited solve]" if self.time_limited else "")


@dataclass
class Explanation:
    """The result of ``explain``: conflicts and relaxations, or reasons per unscheduled job."""

    instance: str
    feasible: bool
    plan: Plan | None = None
    conflicts: list[Requirement] = field(default_factory=list)
    relaxations: list[Relaxation] = field(default_factory=list)
    relaxed_instance: Instance | None = None
    verified: bool | None = None
    verification: str = ""
    minimal: bool | None = None  # proven: exact elastic optimum, infeasible just below
    minimality: str = ""  # the checks just below each relaxation
    jobs: list[JobReason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    time_limited: bool = False

    def __str__(self) -> str:
        """The readable report of ``lines()``, one item per line (not the dataclass dump)."""
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return (f"Explanation(instance={self.instance!r}, feasible={self.feasible}, "
                f"{len(self.conflicts)} conflicts, {len(self.relaxations)} relaxations, "
                f"{len(self.jobs)} job reasons)")

    def reason(self, job: str) -> JobReason | None:
        return next((r for r in self.jobs if r.job == job), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no plan or relaxed instance objects; the plan's status and objective)."""
        return {
            "instance": self.instance,
            "feasible": self.feasible,
            "plan": None if self.plan is None else {
                "status": self.plan.status.value, "objective": self.plan.objective,
                "unscheduled": list(self.plan.unscheduled)},
            "conflicts": [asdict(c) for c in self.conflicts],
            "relaxations": [{**asdict(r), "periods": list(r.periods) if r.periods else None}
                            for r in self.relaxations],
            "verified": self.verified,
            "verification": self.verification,
            "minimal": self.minimal,
            "minimality": self.minimality,
            "jobs": [{**asdict(r), "blocking": list(r.blocking), "binding": list(r.binding),
                      "displaced_jobs": list(r.displaced_jobs)} for r in self.jobs],
            "notes": list(self.notes),
            "time_limited": self.time_limited,
        }

    def lines(self) -> list[str]:
        """The human-readable report, one line per item (``str(explanation)`` joins them): for
        an infeasible instance the conflicting requirements, the relaxation (and whether it is
        proven minimal), the re-solve check and the checks just below; for a feasible one a
        line per unscheduled job with its reason, then the notes."""
        out = []
        if not self.feasible:
            out.append(f"{self.instance}: infeasible")
            if self.conflicts:
                out.append("conflicting requirements:")
                out.extend(f"  {c}" for c in self.conflicts)
            if self.relaxations:
                out.append("smallest relaxation that makes it feasible (proven minimal):"
                           if self.minimal else
                           "a relaxation that makes it feasible (not proven the smallest):")
                out.extend(f"  {r}" for r in self.relaxations)
            if self.verification:
                out.append(f"check: {self.verification}")
            if self.minimality:
                out.append(f"minimality: {self.minimality}")
        else:
            status = self.plan.status.value if self.plan else "feasible"
            objective = self.plan.objective if self.plan else None
            out.append(f"{self.instance}: {status}, objective {_num(objective)}, "
                       f"{len(self.jobs)} unscheduled job(s)")
            for r in self.jobs:
                out.append(f"  {r}")
                if r.blocking:
                    out.append(f"    blocking: {', '.join(r.blocking)}")
                if r.binding:
                    out.append(f"    binding when forced in: {', '.join(r.binding)}")
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _num(x: float | None) -> str:
    return num(x, 4 if x is not None and 0 < abs(x) < 1 else 2)


def _ranges(ts: list[int]) -> str:
    return ranges(ts)

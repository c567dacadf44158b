"""The seven plan rules, derived once as a backend-neutral linear model.

Time-indexed formulation: one binary ``x[j, o, c, s]`` per job, option, cluster and start period
allowed by rules 2 and 3 and by eligibility. Every other rule is a linear row over these
binaries, so CP-SAT, CBC and HiGHS read the same model and must agree on its optimum.

- rule 1: ``sum x[j] <= 1`` (``== 1`` when mandatory);
- rule 4: per pool and period, ``sum gpus * x[running] <= capacity``;
- rule 5: per edge i -> j and start t of j, ``sum x[j, start <= t] <= sum x[i, end <= t]``
  (the strong time-indexed precedence: j starting by t needs i finished by t);
- rule 6: per start-up, ``sum cost * x <= credits``;
- rule 7: per cap and window, ``sum use * x <= limit`` (and ``<= fraction * share`` use).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from ..models import Assignment, Ineligible, Instance, Job

Sense = Literal["<=", ">=", "=="]
Kind = Literal["assign", "capacity", "precedence", "credits", "cap"]


@dataclass(frozen=True, slots=True)
class Placement:
    """What one binary variable means: job, option, cluster and start period."""

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


@dataclass(slots=True)
class Row:
    """A linear constraint ``sum coef * x[var] (sense) rhs`` with its origin for reports."""

    kind: Kind
    name: str
    vars: list[int]
    coefs: list[float]
    sense: Sense
    rhs: float
    key: tuple[str | int, ...] = ()  # capacity rows: (cluster, accelerator, period)


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

    @property
    def num_vars(self) -> int:
        return len(self.placements)

    def size(self) -> dict[str, int]:
        return {
            "variables": self.num_vars,
            "constraints": len(self.rows),
            "nonzeros": sum(len(r.vars) for r in self.rows),
        }

    def forced_jobs(self) -> set[str]:
        """Jobs that must run: those with an ``== 1`` assignment row (mandatory or frozen)."""
        return {self.placements[v].job for r in self.rows
                if r.kind == "assign" and r.sense == "==" for v in r.vars}

    def trivial_bound(self) -> float:
        """A proven upper bound on ``sum objective * x`` (without ``objective_offset``, like
        every backend's bound): every job at its best placement, ignoring all shared rows."""
        forced = self.forced_jobs()
        total = 0.0
        for job, idx in self.by_job.items():
            if idx:
                best = max(self.objective[i] for i in idx)
                total += best if job in forced else max(0.0, best)
        return total

    def objective_value(self, values: list[float]) -> float:
        return sum(c for c, v in zip(self.objective, values, strict=True) if v > 0.5)

    def decode(self, values: list[float]) -> list[Assignment]:
        """Assignments of a 0/1 solution vector."""
        out = []
        for p, v in zip(self.placements, values, strict=True):
            if v > 0.5:
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
        bad = []
        for r in self.rows:
            lhs = sum(c * values[v] for v, c in zip(r.vars, r.coefs, strict=True))
            slack = tol * max(1.0, abs(r.rhs))
            ok = {"<=": lhs <= r.rhs + slack, ">=": lhs >= r.rhs - slack,
                  "==": abs(lhs - r.rhs) <= slack}[r.sense]
            if not ok:
                bad.append(r.name)
        return bad


def build(instance: Instance) -> LinearModel:
    """Derive the linear model of ``instance``."""
    model = LinearModel()
    hours = instance.horizon.period_hours
    cw = instance.objective.cost_weight
    startups = instance.startup_by_id
    for job in instance.jobs:
        _add_placements(model, instance, job, hours, cw, startups[job.startup].weight)

    _assignment_rows(model, instance)
    _capacity_rows(model, instance)
    _precedence_rows(model, instance)
    _credit_rows(model, instance)
    _cap_rows(model, instance)
    return model


def _add_placements(model: LinearModel, instance: Instance, job: Job, hours: float,
                    cost_weight: float, weight: float) -> None:
    deadline = instance.deadline(job)
    idx = model.by_job.setdefault(job.id, [])
    allowed = instance.allowed_clusters(job)
    for k, option in enumerate(job.options):
        for cluster in allowed:
            pool = cluster.pool(option.accelerator)
            if pool is None:
                continue
            reason = instance.ineligibility(job, option.accelerator, cluster)
            if reason is not None:
                model.ineligible.append(Ineligible(job=job.id, option=k, cluster=cluster.id,
                                                   reason=reason))
                continue
            if pool.max_gpus_per_job is not None and option.gpus > pool.max_gpus_per_job:
                continue
            cost = option.gpus * option.periods * hours * pool.price_per_gpu_hour
            value = job.option_value(option)
            for start in range(job.release, deadline - option.periods + 1):
                if any(pool.gpus_at(t) < option.gpus
                       for t in range(start, start + option.periods)):
                    continue  # can never fit the pool in these periods
                idx.append(model.num_vars)
                model.placements.append(Placement(
                    job=job.id, option=k, cluster=cluster.id, accelerator=option.accelerator,
                    gpus=option.gpus, start=start, periods=option.periods, cost=cost,
                    value=value))
                model.objective.append(weight * value - cost_weight * cost)


def _assignment_rows(model: LinearModel, instance: Instance) -> None:
    for job in instance.jobs:
        idx = model.by_job[job.id]
        if job.mandatory:
            if not idx:
                model.infeasible.append(f"mandatory job {job.id} has no placement that rules "
                                        "2, 3 and eligibility allow")
            model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx),
                                  "==", 1.0))
        elif len(idx) > 1:
            model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx),
                                  "<=", 1.0))


def _capacity_rows(model: LinearModel, instance: Instance) -> None:
    model.rows.extend(capacity_rows(model, instance))


def capacity_rows(model: LinearModel, instance: Instance) -> list[Row]:
    """Rule 4 rows of ``instance``'s pools over ``model``'s placements (implied rows left out)."""
    running: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for i, p in enumerate(model.placements):
        for t in range(p.start, p.end):
            running[(p.cluster, p.accelerator, t)].append(i)
    rows = []
    for cluster in instance.clusters:
        for pool in cluster.pools:
            for t in range(instance.horizon.periods):
                idx = running.get((cluster.id, pool.accelerator, t), [])
                coefs = [float(model.placements[i].gpus) for i in idx]
                cap = pool.gpus_at(t)
                if sum(coefs) <= cap or _at_most_one_fits(model, idx, cap):
                    continue
                rows.append(Row("capacity", f"capacity[{cluster.id},{pool.accelerator},{t}]",
                                idx, coefs, "<=", float(cap), (cluster.id, pool.accelerator, t)))
    return rows


def _at_most_one_fits(model: LinearModel, idx: list[int], cap: int) -> bool:
    """True when the row is implied: all vars belong to one job, each fitting on its own."""
    jobs = {model.placements[i].job for i in idx}
    return len(jobs) == 1 and all(model.placements[i].gpus <= cap for i in idx)


def _precedence_rows(model: LinearModel, instance: Instance) -> None:
    for job in instance.jobs:
        mine = model.by_job[job.id]
        starts = sorted({model.placements[i].start for i in mine})
        for dep in job.after:
            theirs = model.by_job[dep]
            for t in starts:
                lhs = [i for i in mine if model.placements[i].start <= t]
                rhs = [i for i in theirs if model.placements[i].end <= t]
                model.rows.append(Row("precedence", f"after[{job.id},{dep},{t}]",
                                      lhs + rhs, [1.0] * len(lhs) + [-1.0] * len(rhs),
                                      "<=", 0.0))


def _credit_rows(model: LinearModel, instance: Instance) -> None:
    spend: dict[str, list[int]] = defaultdict(list)
    for job in instance.jobs:
        spend[job.startup].extend(model.by_job[job.id])
    for startup in instance.startups:
        if startup.credits is None:
            continue
        idx = spend.get(startup.id, [])
        most = sum(max((model.placements[i].cost for i in model.by_job[j.id]), default=0.0)
                   for j in instance.jobs if j.startup == startup.id)
        if most <= startup.credits:
            continue
        model.rows.append(Row("credits", f"credits[{startup.id}]", idx,
                              [model.placements[i].cost for i in idx], "<=", startup.credits))


def _cap_rows(model: LinearModel, instance: Instance) -> None:
    hours = instance.horizon.period_hours
    jobs = instance.job_by_id
    clusters = instance.cluster_by_id
    horizon = instance.horizon.periods
    for cap in instance.caps:
        inside, share = [], []
        for i, p in enumerate(model.placements):
            job, cluster = jobs[p.job], clusters[p.cluster]
            use = cap.per_period_use(p.gpus, instance.tpp(p.accelerator), hours)
            if cap.matches(instance, job, cluster, p.accelerator):
                inside.append((i, use))
            if cap.share_of is not None and cap.share_of.matches(instance, job, cluster,
                                                                 p.accelerator):
                share.append((i, use))
        for window in cap.windows(horizon):
            label = f"{window.start}" if len(window) == 1 else f"{window.start}-{window[-1]}"
            terms = _window_terms(model, inside, window)
            if cap.limit is not None and sum(terms.values()) > cap.limit:
                model.rows.append(Row("cap", f"cap[{cap.id},{label}]", list(terms),
                                      list(terms.values()), "<=", cap.limit))
            if cap.share_of is not None:
                assert cap.fraction is not None
                combined = dict(terms)
                for i, c in _window_terms(model, share, window).items():
                    combined[i] = combined.get(i, 0.0) - cap.fraction * c
                combined = {i: c for i, c in combined.items() if c != 0.0}
                if any(c > 0 for c in combined.values()):
                    model.rows.append(Row("cap", f"share[{cap.id},{label}]", list(combined),
                                          list(combined.values()), "<=", 0.0))


def _window_terms(model: LinearModel, terms: list[tuple[int, float]],
                  window: range) -> dict[int, float]:
    """Per var: per-period use times the number of its running periods inside the window."""
    out: dict[int, float] = {}
    lo, hi = window.start, window.stop
    for i, use in terms:
        p = model.placements[i]
        overlap = min(p.end, hi) - max(p.start, lo)
        if overlap > 0 and use > 0:
            out[i] = use * overlap
    return out

"""The independent plan validator: checks a plan against the seven rules of DESIGN.md.

It reads the meaning of an instance only through the helpers of ``instance.py`` and shares no
code with the optimizer, so a bug in the formulation cannot hide itself here. Rule numbers
follow DESIGN.md "What a plan must satisfy"; rule 0 marks plan-level bookkeeping problems
(unknown ids, jobs in neither list, a wrong ``cost``, ``value`` or ``objective``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .instance import Cap, Instance, Job, Pool
from .plan import Assignment, Plan

REL_TOL = 1e-6


@dataclass(frozen=True)
class Violation:
    """One broken rule (1..7, or 0 for plan-level problems) at one place in the plan."""

    rule: int
    location: str
    message: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.location}: {self.message}"


def tolerance(limit: float) -> float:
    """The slack allowed above ``limit``: 1e-6 relative, at least 1e-6 absolute."""
    return max(1.0, abs(limit)) * REL_TOL


def exceeds(use: float, limit: float) -> bool:
    return use > limit + tolerance(limit)


def differs(a: float, b: float) -> bool:
    return abs(a - b) > tolerance(b)


# -- helpers shared with metrics ------------------------------------------------------------
def matching_option(job: Job, a: Assignment) -> int | None:
    """Index of the job option the assignment runs (accelerator, gpus and periods equal).

    With ``a.option`` given only that option counts; otherwise, among equal options the first
    whose value equals ``a.value`` wins, else the first.
    """

    def same(k: int) -> bool:
        o = job.options[k]
        return (o.accelerator, o.gpus, o.periods) == (a.accelerator, a.gpus, a.periods)

    if a.option is not None:
        return a.option if 0 <= a.option < len(job.options) and same(a.option) else None
    candidates = [k for k in range(len(job.options)) if same(k)]
    for k in candidates:
        if not differs(a.value, job.option_value(job.options[k])):
            return k
    return candidates[0] if candidates else None


def pool_of(instance: Instance, a: Assignment) -> Pool | None:
    cluster = instance.cluster_by_id.get(a.cluster)
    return cluster.pool(a.accelerator) if cluster else None


def assignment_cost(instance: Instance, a: Assignment) -> float:
    """``gpus * periods * period_hours * price``; the plan's own figure if the pool is unknown."""
    pool = pool_of(instance, a)
    if pool is None:
        return a.cost
    return a.gpus * a.periods * instance.horizon.period_hours * pool.price_per_gpu_hour


def assignment_value(instance: Instance, a: Assignment) -> float:
    """The unweighted value of the option run; the plan's own figure if none matches."""
    job = instance.job_by_id.get(a.job)
    k = matching_option(job, a) if job else None
    return a.value if job is None or k is None else job.option_value(job.options[k])


def weight_of(instance: Instance, a: Assignment) -> float:
    job = instance.job_by_id.get(a.job)
    startup = instance.startup_by_id.get(job.startup) if job else None
    return startup.weight if startup else 1.0


def objective_of(instance: Instance, assignments: Iterable[Assignment]) -> float:
    """``sum(weight * option value) - cost_weight * sum(cost)``, recomputed from the instance."""
    value = cost = 0.0
    for a in assignments:
        value += weight_of(instance, a) * assignment_value(instance, a)
        cost += assignment_cost(instance, a)
    return value - instance.objective.cost_weight * cost


def pool_use(instance: Instance,
             assignments: Iterable[Assignment]) -> dict[tuple[str, str], list[int]]:
    """GPUs in use per (cluster, accelerator) pool and period, for assignments on known pools."""
    horizon = instance.horizon.periods
    used: dict[tuple[str, str], list[int]] = {}
    for a in assignments:
        if pool_of(instance, a) is None:
            continue
        row = used.setdefault((a.cluster, a.accelerator), [0] * horizon)
        for t in range(max(0, a.start), min(a.end, horizon)):
            row[t] += a.gpus
    return used


def cap_use(instance: Instance, cap: Cap,
            assignments: Iterable[Assignment]) -> tuple[list[float], list[float] | None]:
    """Per-period use of the cap's scope and (for a share cap) of its ``share_of`` scope."""
    horizon = instance.horizon.periods
    hours = instance.horizon.period_hours
    use = [0.0] * horizon
    share = [0.0] * horizon if cap.share_of is not None else None
    scopes: dict[tuple[str, str, str], list[list[float]]] = {}  # the rows an assignment feeds
    for a in assignments:
        job = instance.job_by_id.get(a.job)
        cluster = instance.cluster_by_id.get(a.cluster)
        if job is None or cluster is None:
            continue
        key = (job.startup, cluster.id, a.accelerator)  # all that scope matching reads
        rows = scopes.get(key)
        if rows is None:
            rows = scopes[key] = []
            if cap.matches(instance, job, cluster, a.accelerator):
                rows.append(use)
            if share is not None and cap.share_of is not None and \
                    cap.share_of.matches(instance, job, cluster, a.accelerator):
                rows.append(share)
        if not rows:
            continue
        per_period = cap.per_period_use(a.gpus, instance.tpp(a.accelerator), hours)
        for row in rows:
            for t in range(max(0, a.start), min(a.end, horizon)):
                row[t] += per_period
    return use, share


def window_limit(cap: Cap, share_use: float | None) -> float | None:
    """The effective bound of one window: ``limit``, ``fraction * share use``, or the min."""
    bounds = []
    if cap.limit is not None:
        bounds.append(cap.limit)
    if cap.fraction is not None and share_use is not None:
        bounds.append(cap.fraction * share_use)
    return min(bounds) if bounds else None


def window_label(cap: Cap, window: range) -> str:
    first, last = window.start, window.stop - 1
    return f"caps[{cap.id},t={first}]" if first == last else f"caps[{cap.id},t={first}..{last}]"


# -- the validator ------------------------------------------------------------------------
def validate(instance: Instance, plan: Plan) -> list[Violation]:
    """Every violation of the plan against the instance; an empty list means valid."""
    out: list[Violation] = []
    add = out.append
    horizon = instance.horizon.periods
    job_index = {j.id: i for i, j in enumerate(instance.jobs)}
    by_job: dict[str, list[int]] = defaultdict(list)

    # Rules 0-3, per assignment.
    for i, a in enumerate(plan.assignments):
        loc = f"assignments[{i}]"
        job = instance.job_by_id.get(a.job)
        cluster = instance.cluster_by_id.get(a.cluster)
        if job is None:
            add(Violation(0, f"{loc}.job", f"unknown job {a.job!r}"))
            continue
        by_job[a.job].append(i)
        if cluster is None:
            add(Violation(0, f"{loc}.cluster", f"unknown cluster {a.cluster!r}"))
        if a.accelerator not in instance.catalog:
            add(Violation(0, f"{loc}.accelerator", f"unknown accelerator {a.accelerator!r}"))

        # Rule 1: one of the job's own options (accelerator, gpus, periods = end - start).
        k = matching_option(job, a)
        if k is None:
            out.extend(_option_mismatch(loc, job, a))
        else:
            want = job.option_value(job.options[k])
            if differs(a.value, want):
                add(Violation(0, f"{loc}.value", f"value {a.value} differs from option "
                              f"{k}'s value {want}"))

        # Rule 2: pool, allowed cluster, max gang size, export eligibility.
        if cluster is not None:
            pool = cluster.pool(a.accelerator)
            if pool is None:
                add(Violation(2, f"{loc}.cluster", f"cluster {cluster.id} has no "
                              f"{a.accelerator} pool"))
            elif pool.max_gpus_per_job is not None and a.gpus > pool.max_gpus_per_job:
                add(Violation(2, f"{loc}.gpus", f"{a.gpus} GPUs exceed the pool's "
                              f"max_gpus_per_job {pool.max_gpus_per_job}"))
            if all(c.id != cluster.id for c in instance.allowed_clusters(job)):
                add(Violation(2, f"{loc}.cluster", f"cluster {cluster.id} (region "
                              f"{cluster.region}) is not allowed for job {job.id}"))
            reason = instance.ineligibility(job, a.accelerator, cluster)
            if reason is not None:
                add(Violation(2, loc, f"ineligible: {reason}"))
            if pool is not None:
                cost = assignment_cost(instance, a)
                if differs(a.cost, cost):
                    add(Violation(0, f"{loc}.cost", f"cost {a.cost} differs from "
                                  f"gpus*periods*period_hours*price = {cost}"))

        # Rule 3: time window.
        deadline = instance.deadline(job)
        if a.start < job.release:
            add(Violation(3, f"{loc}.start", f"starts at {a.start}, before release "
                          f"{job.release}"))
        if a.end > deadline:
            add(Violation(3, f"{loc}.end", f"ends at {a.end}, after deadline {deadline}"))
        elif a.end > horizon:
            add(Violation(3, f"{loc}.end", f"ends at {a.end}, after the horizon {horizon}"))

    # Rule 1: at most once; mandatory exactly once. Rule 0: every job assigned or unscheduled.
    unscheduled: dict[str, int] = {}
    for m, job_id in enumerate(plan.unscheduled):
        loc = f"unscheduled[{m}]"
        if job_id not in instance.job_by_id:
            add(Violation(0, loc, f"unknown job {job_id!r}"))
        elif job_id in unscheduled:
            add(Violation(0, loc, f"job {job_id} listed twice as unscheduled"))
        elif job_id in by_job:
            add(Violation(0, loc, f"job {job_id} is both assigned and unscheduled"))
        unscheduled.setdefault(job_id, m)
    for job_id, rows in by_job.items():
        if len(rows) > 1:
            where = ", ".join(f"assignments[{r}]" for r in rows)
            add(Violation(1, f"jobs[{job_index[job_id]}]", f"job {job_id} is assigned "
                          f"{len(rows)} times ({where})"))
    for n, job in enumerate(instance.jobs):
        if job.id in by_job:
            continue
        if job.mandatory:
            add(Violation(1, f"jobs[{n}]", f"mandatory job {job.id} is not assigned"))
        if job.id not in unscheduled:
            add(Violation(0, f"jobs[{n}]", f"job {job.id} is neither assigned nor unscheduled"))

    # Rule 5: dependencies run and end no later than the dependant starts.
    for job_id, rows in by_job.items():
        job = instance.job_by_id[job_id]
        for dep in job.after:
            if dep not in by_job:
                add(Violation(5, f"assignments[{rows[0]}]", f"job {job_id} runs but its "
                              f"dependency {dep} does not"))
                continue
            dep_end = plan.assignments[by_job[dep][0]].end
            for r in rows:
                start = plan.assignments[r].start
                if dep_end > start:
                    add(Violation(5, f"assignments[{r}]", f"job {job_id} starts at {start} "
                                  f"but its dependency {dep} ends at {dep_end}"))

    known = [a for a in plan.assignments if a.job in instance.job_by_id]

    # Rule 4: capacity of every pool in every period.
    for (cluster_id, acc), row in pool_use(instance, known).items():
        pool = instance.cluster_by_id[cluster_id].pool(acc)
        assert pool is not None
        for t, used in enumerate(row):
            if used and exceeds(used, pool.gpus_at(t)):
                add(Violation(4, f"capacity[{cluster_id},{acc},t={t}]", f"{used} GPUs in "
                              f"use, capacity {pool.gpus_at(t)}"))

    # Rule 6: credits.
    spend: dict[str, float] = defaultdict(float)
    for a in known:
        spend[instance.job_by_id[a.job].startup] += assignment_cost(instance, a)
    for startup in instance.startups:
        if startup.credits is not None and exceeds(spend[startup.id], startup.credits):
            add(Violation(6, f"credits[{startup.id}]", f"spend {spend[startup.id]:.6g} "
                          f"exceeds credits {startup.credits:.6g}"))

    # Rule 7: caps, per window.
    for cap in instance.caps:
        use, share = cap_use(instance, cap, known)
        for window in cap.windows(horizon):
            total = math.fsum(use[t] for t in window)
            if cap.limit is not None and exceeds(total, cap.limit):
                add(Violation(7, window_label(cap, window), f"{cap.metric} use {total:.6g} "
                              f"exceeds limit {cap.limit:.6g}"))
            if share is not None and cap.fraction is not None:
                bound = cap.fraction * math.fsum(share[t] for t in window)
                if exceeds(total, bound):
                    add(Violation(7, window_label(cap, window), f"{cap.metric} use "
                                  f"{total:.6g} exceeds {cap.fraction:g} of the share_of "
                                  f"use ({bound:.6g})"))

    # Rule 0: the objective the plan claims.
    if plan.objective is not None:
        objective = objective_of(instance, plan.assignments) + plan.objective_adjustment
        if differs(plan.objective, objective):
            add(Violation(0, "objective", f"plan claims {plan.objective}, the assignments "
                          f"give {objective}"))
    return out


def _option_mismatch(loc: str, job: Job, a: Assignment) -> list[Violation]:
    """Why an assignment matches none of its job's options (rule 1, or 2 for gpus)."""
    if a.option is not None and not 0 <= a.option < len(job.options):
        return [Violation(1, f"{loc}.option", f"job {job.id} has no option {a.option}")]
    options = [job.options[a.option]] if a.option is not None else list(job.options)
    if any((o.accelerator, o.periods) == (a.accelerator, a.periods) for o in options):
        want = sorted({o.gpus for o in options
                       if (o.accelerator, o.periods) == (a.accelerator, a.periods)})
        return [Violation(2, f"{loc}.gpus", f"{a.gpus} GPUs is not the option's "
                          f"({', '.join(map(str, want))})")]
    return [Violation(1, loc, f"{a.accelerator} x{a.gpus} for {a.periods} periods "
                      f"(end - start) is not one of job {job.id}'s options")]


def is_valid(instance: Instance, plan: Plan) -> bool:
    """Whether the plan satisfies every rule."""
    return not validate(instance, plan)


__all__ = ["Violation", "assignment_cost", "is_valid", "objective_of", "validate"]

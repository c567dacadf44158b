"""The independent plan validator: checks a plan against the eight rules of DESIGN.md.

It reads the meaning of an instance only through the helpers of ``instance.py`` and shares no
code with the optimizer, so a bug in the formulation cannot hide itself here. Rule numbers
follow DESIGN.md "What a plan must satisfy"; rule 0 marks plan-level bookkeeping problems
(unknown ids, jobs in neither list, a wrong ``cost``, ``value`` or ``objective``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .format import precise
from .instance import Instance, Job
from .plan import Assignment, Plan
from .rules import (
    assignment_cost,
    cap_use,
    credit_windows,
    differs,
    exceeds,
    matching_option,
    objective_of,
    period_spend,
    pool_use,
    shares,
    tolerance,
    window_label,
)


@dataclass(frozen=True)
class Violation:
    """One broken rule (1..8, or 0 for plan-level problems) at one place in the plan."""

    rule: int
    location: str
    message: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.location}: {self.message}"


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
            add(Violation(6, f"credits[{startup.id}]", f"spend {precise(spend[startup.id])} "
                          f"exceeds credits {precise(startup.credits)}"))
    out.extend(_tranche_violations(instance, known))

    # Rule 7: caps, per window.
    for cap in instance.caps:
        use, share = cap_use(instance, cap, known)
        for window in cap.windows(horizon):
            total = math.fsum(use[t] for t in window)
            if cap.limit is not None and exceeds(total, cap.limit):
                add(Violation(7, window_label(cap, window), f"{cap.metric} use {precise(total)} "
                              f"exceeds limit {precise(cap.limit)}"))
            if share is not None and cap.fraction is not None:
                bound = cap.fraction * math.fsum(share[t] for t in window)
                if exceeds(total, bound):
                    add(Violation(7, window_label(cap, window), f"{cap.metric} use "
                                  f"{precise(total)} exceeds {precise(cap.fraction)} of the "
                                  f"share_of use ({precise(bound)})"))

    # Rule 8: fairness floors.
    share = shares(instance, known)
    for startup in instance.startups:
        if startup.min_share is None or startup.id not in share:
            continue
        if share[startup.id] < startup.min_share - tolerance(startup.min_share):
            add(Violation(8, f"share[{startup.id}]", f"share {precise(share[startup.id])} is "
                          f"below min_share {precise(startup.min_share)}"))

    # Rule 0: the objective the plan claims.
    if plan.objective is not None:
        objective = objective_of(instance, plan.assignments) + plan.objective_adjustment
        if differs(plan.objective, objective):
            add(Violation(0, "objective", f"plan claims {plan.objective}, the assignments "
                          f"give {objective}"))
    return out


def _tranche_violations(instance: Instance, known: list[Assignment]) -> list[Violation]:
    """Rule 6 with tranches: the spend of every credit window within its limit (the first
    broken window of each tranche is reported)."""
    out: list[Violation] = []
    spend = period_spend(instance, known)
    for startup in instance.startups:
        reported: set[int | None] = set()
        for w in credit_windows(startup, instance.horizon.periods):
            if w.tranche in reported:
                continue
            total = math.fsum(spend[startup.id][t] for t in w.periods)
            if exceeds(total, w.limit):
                reported.add(w.tranche)
                if startup.carry_over:
                    limit = (f"the {precise(w.limit)} credits released by period "
                             f"{w.periods.stop - 1}")
                elif w.tranche is None:
                    limit = "0 (no credits before the first tranche)"
                else:
                    limit = f"tranche {w.tranche}'s {precise(w.limit)} credits"
                out.append(Violation(6, w.label, f"spend {precise(total)} in periods "
                                     f"{w.periods.start}..{w.periods.stop - 1} exceeds {limit}"))
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

"""The shared rule helpers: what an assignment costs, is worth and uses, read from the instance.

The validator, the metrics, the reports and the analyses use these; the optimizer's formulation
does not (it writes the same rules as rows), so a bug in either shows up in the validator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .format import num, ranges
from .instance import Cap, Cluster, Instance, Job, Pool, Startup
from .plan import Assignment

REL_TOL = 1e-6


def tolerance(limit: float) -> float:
    """The slack allowed above ``limit``: 1e-6 relative, at least 1e-6 absolute."""
    return max(1.0, abs(limit)) * REL_TOL


def exceeds(use: float, limit: float) -> bool:
    return use > limit + tolerance(limit)


def differs(a: float, b: float) -> bool:
    return abs(a - b) > tolerance(b)


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


def why_not_here(instance: Instance, job: Job, accelerator: str, gpus: int,
                 cluster: Cluster) -> str | None:
    """Why ``job`` cannot run ``gpus`` x ``accelerator`` on ``cluster`` whatever the timing
    (rule 2 and the export rules), or None when it can: the one wording of "why can't this job
    run here" that explain, the report and re-planning share."""
    if all(c.id != cluster.id for c in instance.allowed_clusters(job)):
        return f"cluster {cluster.id} is not allowed for job {job.id} (its or its start-up's " \
               "clusters/regions)"
    pool = cluster.pool(accelerator)
    if pool is None:
        return f"{cluster.id} has no {accelerator} pool"
    if pool.max_gpus_per_job is not None and gpus > pool.max_gpus_per_job:
        return f"{cluster.id}/{accelerator} takes at most {pool.max_gpus_per_job} GPUs per job"
    reason = instance.ineligibility(job, accelerator, cluster)
    if reason is not None:
        return f"ineligible on {cluster.id}: {reason}"
    return None


# -- credit tranches (DESIGN.md "Credit tranches") and shares (rule 8) ---------------------
def period_spend(instance: Instance, assignments: Iterable[Assignment]) -> dict[str, list[float]]:
    """Spend per start-up and period: an assignment costs ``gpus * period_hours * price`` in
    each period it occupies (summed over its periods this is ``assignment_cost``)."""
    horizon = instance.horizon.periods
    hours = instance.horizon.period_hours
    out: dict[str, list[float]] = {s.id: [0.0] * horizon for s in instance.startups}
    for a in assignments:
        job = instance.job_by_id.get(a.job)
        pool = pool_of(instance, a)
        if job is None or pool is None or job.startup not in out:
            continue
        row = out[job.startup]
        for t in range(max(0, a.start), min(a.end, horizon)):
            row[t] += a.gpus * hours * pool.price_per_gpu_hour
    return out


@dataclass(frozen=True)
class CreditWindow:
    """Periods whose summed spend is at most ``limit`` under rule 6 with tranches.

    ``tranche`` is the index of the tranche whose release sets the limit (None: before the
    first tranche, where nothing is spendable).
    """

    startup: str
    tranche: int | None
    periods: range
    limit: float

    @property
    def label(self) -> str:
        first, last = self.periods.start, self.periods.stop - 1
        when = f"t={first}" if first == last else f"t={first}..{last}"
        return f"credits[{self.startup},{when}]"


def tranche_segments(startup: Startup, horizon: int) -> list[tuple[int | None, range]]:
    """Each tranche's periods (``from`` up to the next ``from``; the last to the horizon's
    end), preceded by ``(None, 0..first from - 1)`` when the first tranche starts later."""
    froms = [t.from_ for t in startup.tranches]
    out: list[tuple[int | None, range]] = []
    if froms and froms[0] > 0:
        out.append((None, range(0, min(froms[0], horizon))))
    for k, first in enumerate(froms):
        stop = froms[k + 1] if k + 1 < len(froms) else horizon
        out.append((k, range(min(first, horizon), min(stop, horizon))))
    return [(k, r) for k, r in out if len(r)]


def credit_windows(startup: Startup, horizon: int) -> list[CreditWindow]:
    """The windows of rule 6 for a start-up with tranches (none without tranches).

    ``carry_over: true``: for every period t, periods 0..t against the credits released by t.
    ``carry_over: false``: each tranche's periods against that tranche (0 before the first).
    """
    out: list[CreditWindow] = []
    if not startup.tranches:
        return out
    for k, periods in tranche_segments(startup, horizon):
        if startup.carry_over:
            for t in periods:
                out.append(CreditWindow(startup.id, k, range(0, t + 1),
                                        startup.released(t) or 0.0))
        else:
            limit = 0.0 if k is None else startup.tranches[k].credits
            out.append(CreditWindow(startup.id, k, periods, limit))
    return out


def tranche_text(startup: str, index: int, binding_periods: list[int] | None = None,
                 periods: tuple[int, int] | None = None, unspent: float | None = None) -> str:
    """The one wording of a tranche in reasons: ``tranche 2 of moonshot binds in periods
    13-20`` (its ``binding_periods``, from the metrics), else ``tranche 2 of moonshot
    (periods 13-25)``, with ``has 20 credits left`` when ``unspent`` is given."""
    name = f"tranche {index} of {startup}"
    if binding_periods:
        return f"{name} binds in period{'s' * (len(binding_periods) > 1)} " \
            f"{ranges(sorted(binding_periods))}"
    if periods is not None:
        a, b = periods
        name += f" (period {a})" if a == b else f" (periods {a}-{b})"
    if unspent is not None:
        name += f" has {num(max(0.0, unspent))} credits left"
    return name


def shares(instance: Instance, assignments: Iterable[Assignment]) -> dict[str, float]:
    """Per start-up with a positive asked value: scheduled option values (unweighted) divided
    by the asked value. Start-ups with asked value 0 have no share (absent)."""
    asked = instance.asked_value
    value = dict.fromkeys(asked, 0.0)
    for a in assignments:
        job = instance.job_by_id.get(a.job)
        if job is not None and job.startup in value:
            value[job.startup] += assignment_value(instance, a)
    return {sid: value[sid] / total for sid, total in asked.items() if total > 0}

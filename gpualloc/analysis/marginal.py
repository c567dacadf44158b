"""Marginal values of capacity, caps and credits, and the cap report.

``marginal_values`` ranks three kinds of resource by the objective gained per unit added:

- **pools**, per period range (``splits`` equal ranges of the horizon: 2 = halves, 4 =
  quarters), in GPU-periods: ``delta`` GPUs are added in every period of the range;
- **caps** with a ``limit``, in the cap's metric (TPP, GPU-hours or GPUs): the limit of every
  window is raised by ``delta`` (share-only caps have no limit to raise and are skipped);
- **credits** of every start-up with a finite grant, in credits.

The step (documented in the README): ``delta = max(relative * current, quantum)``, where
``current`` is the pool's peak GPUs in the range, the cap's limit or the start-up's credits,
``relative`` defaults to 10 %, and the *job-sized quantum* is the smallest need of one job the
base plan leaves unscheduled that could use the resource: the smallest gang of such a job's
options on the pool, the smallest use one of its assignments adds to one window of the cap,
the cheapest of its placements for the start-up's credits (no such job: no quantum). With the
quantum, a step is never too small for one more job to fit, so a zero says that no waiting job
can turn that resource into value on its own. (``quantum=False`` drops it; a pool grows by at
least one GPU.) A resource no job can use at all is skipped (its value is 0).
The value per unit is ``(objective after - objective before) / units added`` where both
objectives come from solves (the re-solve is warm-started from the base plan, which stays
valid, so the gain is never negative). With discrete jobs the value is a step function: the
figure is the average over the step, not a derivative.

With HiGHS available, the duals of the LP relaxation (binaries relaxed to [0, 1], solved
with HiGHS through PuLP) are shown beside, labelled "LP dual", in the same units: for a pool
range the capacity-row duals summed over the range's periods and divided by its length (value
per GPU-period), for a cap the sum of its limit rows' duals over all windows (the limit moves
in every window), for credits the dual of the start-up's credit row. A row the formulation
leaves out because it can never bind has dual 0. LP duals price fractional jobs and can be
far from the integer figures; they are a quick indication, not the answer.

``cap_report`` lists, for each cap and window, use against limit and whether it binds, and for
each binding cap the objective a 10 % looser cap adds (re-solve warm-started from the plan).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..models import Instance, Plan
from ..models.metrics import plan_metrics
from ..models.scenarios import CapChange, CreditsChange, PoolGpusChange, apply
from ..optimizer.model.formulation import build
from ..optimizer.solve import solve
from .whatif import StudyProgress, make_task, solve_many

Kind = Literal["pool", "cap", "credits"]
UNITS = {"gpus": "GPU", "tpp": "TPP", "gpu_hours": "GPU-hour"}


@dataclass(frozen=True)
class MarginalValue:
    """The value of adding ``delta`` of one resource, per unit added."""

    kind: Kind
    item: str                       # "hz-1/H20 [0-12]", "restricted-cn", "moonshot"
    unit: str                       # GPU-period, TPP, GPU-hour, GPU, credit
    delta: float                    # GPUs per period (pools), limit or credits added
    units_added: float              # delta in ``unit`` (GPU-periods for pools)
    gain: float | None              # objective after minus before (None: no plan)
    value_per_unit: float | None
    status: str                     # status of the re-solve ("skipped": nothing can use it)
    lp_dual: float | None = None    # LP-relaxation dual, per unit, where available
    rank: int = 0                   # 1 = most valuable within its kind; 0: gains nothing
    target: str = ""                # pool "cluster/accelerator", cap id or start-up id
    periods: tuple[int, int] | None = None  # pools: first and last period of the range
    note: str = ""
    changes: tuple[Any, ...] = field(default=(), repr=False, compare=False)  # what was added
    plan: Plan | None = field(default=None, repr=False, compare=False)  # the re-solve's plan


def period_ranges(horizon: int, splits: int) -> list[range]:
    """``splits`` near-equal consecutive ranges covering ``0 .. horizon-1``."""
    splits = max(1, min(splits, horizon))
    bounds = [k * horizon // splits for k in range(splits + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(splits) if bounds[k + 1] > bounds[k]]


@dataclass
class _Quanta:
    """Per resource: whether any job can use it, and the smallest need of an unscheduled job."""

    usable: set[str] = field(default_factory=set)
    smallest: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, need: float, unscheduled: bool) -> None:
        self.usable.add(key)
        if unscheduled and need > 0:
            self.smallest[key] = min(self.smallest.get(key, need), need)


def _quanta(instance: Instance, plan: Plan) -> _Quanta:
    """What one more job would need of each pool, cap and start-up's credits.

    Keys: ``pool:CLUSTER/ACC``, ``cap:ID``, ``credits:ID``. The need of a placement is its
    gang (pools), its use of one cap window (caps) or its cost (credits).
    """
    q = _Quanta()
    ran = {a.job for a in plan.assignments} if plan.is_feasible else set()
    hours = instance.horizon.period_hours
    longest = {c.id: max((len(w) for w in c.windows(instance.horizon.periods)), default=1)
               for c in instance.caps}
    for job in instance.jobs:
        waiting = job.id not in ran
        for _, option, c in instance.placements(job):
            q.add(f"pool:{c.id}/{option.accelerator}", option.gpus, waiting)
            q.add(f"credits:{job.startup}", instance.cost(c, option), waiting)
            for cap in instance.caps:
                if cap.matches(instance, job, c, option.accelerator):
                    use = cap.per_period_use(option.gpus, instance.tpp(option.accelerator),
                                             hours)
                    q.add(f"cap:{cap.id}", use * min(option.periods, longest[cap.id]), waiting)
    return q


@dataclass
class _Probe:
    kind: Kind
    item: str
    unit: str
    delta: float
    units_added: float
    changes: list[Any]
    target: str
    periods: tuple[int, int] | None = None
    note: str = ""
    plan: Plan | None = field(default=None, repr=False)


def _probes(instance: Instance, plan: Plan, *, relative: float, quantum: bool,
            splits: int) -> list[_Probe]:
    out: list[_Probe] = []
    horizon = instance.horizon.periods
    quanta = _quanta(instance, plan)

    def step(key: str, current: float, minimum: float = 0.0) -> float:
        q = quanta.smallest.get(key, 0.0) if quantum else 0.0
        delta = max(relative * current, q)
        return delta if delta > 0 else max(minimum, 1.0)

    for cluster in instance.clusters:
        for pool in cluster.pools:
            name = f"{cluster.id}/{pool.accelerator}"
            usable = f"pool:{name}" in quanta.usable
            for r in period_ranges(horizon, splits):
                peak = max(pool.gpus_at(t) for t in r)
                delta = max(1, math.ceil(step(f"pool:{name}", peak)))
                out.append(_Probe(
                    "pool", f"{name} [{r.start}-{r[-1]}]", "GPU-period", delta,
                    float(delta * len(r)),
                    [PoolGpusChange(cluster=cluster.id, accelerator=pool.accelerator,
                                    add=delta, until=r.stop, **{"from": r.start})],
                    name, (r.start, r[-1]), "" if usable else "no job can run on this pool"))
    for cap in instance.caps:
        if cap.limit is None:
            continue
        key = f"cap:{cap.id}"
        delta = step(key, cap.limit)
        out.append(_Probe("cap", cap.id, UNITS[cap.metric], delta, delta,
                          [CapChange(id=cap.id, set=cap.limit + delta)], cap.id,
                          note="" if key in quanta.usable else "nothing in the cap's scope"))
    for s in instance.startups:
        if s.credits is None:
            continue
        key = f"credits:{s.id}"
        delta = step(key, s.credits)
        out.append(_Probe("credits", s.id, "credit", delta, delta,
                          [CreditsChange(startup=s.id, set=s.credits + delta)], s.id,
                          note="" if key in quanta.usable else "no job of this start-up can "
                          "run"))
    return out


def marginal_values(instance: Instance, *, backend: str = "cpsat",
                    time_limit: float | None = 60.0, seed: int = 0,
                    gap_tolerance: float = 1e-6, relative: float = 0.10, quantum: bool = True,
                    splits: int = 2, base_plan: Plan | None = None, lp_duals: bool = True,
                    workers: int = 1, dask_address: str | None = None,
                    progress: StudyProgress | None = None) -> list[MarginalValue]:
    """Rank pools (per period range), caps and credits by objective gained per unit added.

    See the module docstring for the deltas and units. Results are grouped by kind (pools,
    caps, credits) and sorted within each kind by value per unit, highest first (``rank``).
    Re-solves run like a study: serially, in ``workers`` processes or on Dask.
    """
    if base_plan is None:
        base_plan = solve(instance, backend, time_limit=time_limit, seed=seed, workers=1,
                          gap_tolerance=gap_tolerance)
    probes = _probes(instance, base_plan, relative=relative, quantum=quantum, splits=splits)
    runnable = [p for p in probes if not p.note]
    warm = base_plan if base_plan.is_feasible else None
    tasks = [make_task(p.item, apply(instance, p.changes), backend=backend,
                       time_limit=time_limit, seed=seed, gap_tolerance=gap_tolerance,
                       warm_start=warm) for p in runnable]
    plans = solve_many(tasks, workers=workers, dask_address=dask_address, progress=progress)
    for p, plan in zip(runnable, plans, strict=True):
        p.plan = plan
    duals = lp_relaxation_duals(instance) if lp_duals else None

    values: list[MarginalValue] = []
    before = base_plan.objective if base_plan.is_feasible else None
    for p in probes:
        if p.plan is None:
            gain: float | None = 0.0 if before is not None else None
            status = "skipped"
        else:
            after = p.plan.objective if p.plan.is_feasible else None
            gain = after - before if after is not None and before is not None else None
            status = p.plan.status.value
        per_unit = gain / p.units_added if gain is not None and p.units_added else None
        values.append(MarginalValue(
            kind=p.kind, item=p.item, unit=p.unit, delta=p.delta, units_added=p.units_added,
            gain=gain, value_per_unit=per_unit, status=status,
            lp_dual=_dual_of(duals, instance, p) if duals is not None else None,
            target=p.target, periods=p.periods, note=p.note, changes=tuple(p.changes),
            plan=p.plan))
    return _ranked(values)


def _ranked(values: list[MarginalValue]) -> list[MarginalValue]:
    """Within each kind: the resources that gain, by value per unit (rank 1, 2, ...), then the
    ones that gain nothing (rank 0, unranked) in resource and period order."""
    out = []

    def order(v: MarginalValue) -> tuple[str, tuple[int, int]]:
        return v.target or v.item, v.periods or (0, 0)

    for kind in ("pool", "cap", "credits"):
        group = [v for v in values if v.kind == kind]
        gaining = sorted((v for v in group if gains(v)),
                         key=lambda v: (-(v.value_per_unit or 0.0), order(v)))
        rest = sorted((v for v in group if not gains(v)), key=order)
        out += [replace(v, rank=k) for k, v in enumerate(gaining, 1)]
        out += [replace(v, rank=0) for v in rest]
    return out


def gains(v: MarginalValue) -> bool:
    """Whether adding the resource raised the objective (beyond the 1e-6 tolerance)."""
    return v.value_per_unit is not None and v.gain is not None and v.gain > 1e-6


def _dual_of(duals: dict[str, float], instance: Instance, p: _Probe) -> float | None:
    if p.kind == "pool":
        assert p.periods is not None
        first, last = p.periods
        cluster, acc = p.target.split("/", 1)
        total = sum(duals.get(f"capacity[{cluster},{acc},{t}]", 0.0)
                    for t in range(first, last + 1))
        return total / (last - first + 1)
    if p.kind == "cap":
        return sum(v for k, v in duals.items() if k.startswith(f"cap[{p.target},"))
    return duals.get(f"credits[{p.target}]", 0.0)


def lp_relaxation_duals(instance: Instance) -> dict[str, float] | None:
    """Duals of the LP relaxation's rows by row name: objective gained per unit of rhs.

    The formulation's binaries are relaxed to [0, 1] and the LP is solved with HiGHS
    through PuLP. None when HiGHS is missing or the LP has no optimum.
    """
    try:
        import highspy  # noqa: F401
        import pulp
    except ImportError:
        return None
    from ..optimizer.backends.mip import _swallow_highs_banner, pulp_highs
    from ..optimizer.model.pulp import to_pulp

    model = build(instance, roundings=False)  # the pool rows' own duals
    if model.infeasible:
        return None
    if not pulp.HiGHS(msg=False).available():
        return None
    _swallow_highs_banner()
    # Minimise the negated objective: PuLP reports a minimisation's duals with one sign
    # convention for every solver (d objective / d rhs), so the gain per unit is -pi.
    form = to_pulp(model, name="gpualloc_lp", relax=True, minimize=True)
    prob = form.prob
    rows = [(row.name, con) for row, con in zip(model.rows, form.constraints, strict=True)]
    if not rows:
        return {}
    prob.solve(pulp_highs(1, msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        return None
    out: dict[str, float] = {}
    for name, con in rows:
        pi = con.pi
        if pi is None or not math.isfinite(pi):
            continue
        out[name] = 0.0 if pi == 0 else -pi
    return out


# -- the cap report --------------------------------------------------------------------------
@dataclass(frozen=True)
class CapLine:
    """One cap: its windows (use, limit, binding) and the value of a looser cap."""

    cap: str
    metric: str
    per: str
    limit: float | None
    fraction: float | None
    windows: list[dict[str, Any]]
    binding: int                   # number of binding windows
    peak_use: float
    peak_limit: float | None
    looser_gain: float | None = None   # objective added by the looser cap (binding or near)
    near_binding: int = 0          # windows not binding but at >= NEAR_BINDING of the limit
    looser_status: str | None = None
    looser_plan: Plan | None = None


NEAR_BINDING = 0.99  # a window using this share of its limit or more is near-binding


def _near(window: dict[str, Any]) -> bool:
    """Not binding, but at ``NEAR_BINDING`` of its limit or more (a cap worth pricing)."""
    limit = window.get("limit")
    return (not window["binding"] and limit is not None and limit > 0
            and window["use"] >= NEAR_BINDING * limit)


@dataclass
class CapReport:
    plan: Plan
    loosen: float
    lines: list[CapLine]


def cap_report(instance: Instance, plan: Plan | None = None, *, backend: str = "cpsat",
               time_limit: float | None = 60.0, seed: int = 0, gap_tolerance: float = 1e-6,
               loosen: float = 0.10, workers: int = 1, dask_address: str | None = None,
               progress: StudyProgress | None = None) -> CapReport:
    """Use against limit per cap and window; for binding and near-binding caps (a window at
    99% of its limit or more), the value of a looser cap.

    Without ``plan`` the instance is solved first. Such a cap is re-solved with
    ``scale = 1 + loosen`` (``apply(instance, [cap scale 1.1])``), warm-started from the
    plan; ``looser_gain`` is the new objective minus the plan's.
    """
    if plan is None:
        plan = solve(instance, backend, time_limit=time_limit, seed=seed, workers=1,
                     gap_tolerance=gap_tolerance)
    caps = plan_metrics(instance, plan)["caps"] if plan.is_feasible else {
        c.id: {"metric": c.metric, "per": c.per, "limit": c.limit, "windows": [],
               "peak_use": 0.0, "peak_limit": None} for c in instance.caps}
    by_id = {c.id: c for c in instance.caps}
    binding = [cid for cid, c in caps.items()
               if any(w["binding"] or _near(w) for w in c["windows"])]
    warm = plan if plan.is_feasible else None
    tasks = [make_task(cid, apply(instance, [CapChange(id=cid, scale=1.0 + loosen)]),
                       backend=backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance, warm_start=warm) for cid in binding]
    looser = dict(zip(binding, solve_many(tasks, workers=workers, dask_address=dask_address,
                                          progress=progress), strict=True))
    lines = []
    for cid, c in caps.items():
        other = looser.get(cid)
        gain = None
        if other is not None and other.is_feasible and plan.objective is not None:
            gain = other.objective - plan.objective  # type: ignore[operator]
        lines.append(CapLine(
            cap=cid, metric=c["metric"], per=c["per"], limit=c["limit"],
            fraction=by_id[cid].fraction, windows=c["windows"],
            binding=sum(1 for w in c["windows"] if w["binding"]), peak_use=c["peak_use"],
            peak_limit=c["peak_limit"], looser_gain=gain,
            near_binding=sum(1 for w in c["windows"] if _near(w)),
            looser_status=other.status.value if other is not None else None,
            looser_plan=other))
    return CapReport(plan=plan, loosen=loosen, lines=lines)


def marginal_rows(values: Sequence[MarginalValue]) -> list[dict[str, Any]]:
    """Plain rows for CSV output."""
    keys = ("kind", "rank", "item", "unit", "delta", "units_added", "gain", "value_per_unit",
            "lp_dual", "status", "note")
    return [{k: getattr(v, k) for k in keys} for v in values]


def group_by_kind(values: Sequence[MarginalValue]) -> dict[str, list[MarginalValue]]:
    out: dict[str, list[MarginalValue]] = defaultdict(list)
    for v in values:
        out[v.kind].append(v)
    return dict(out)


__all__ = [
    "CapLine",
    "CapReport",
    "MarginalValue",
    "cap_report",
    "gains",
    "group_by_kind",
    "lp_relaxation_duals",
    "marginal_rows",
    "marginal_values",
    "period_ranges",
]

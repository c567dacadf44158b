"""Trade-off curves: the best value as fairness, spend or stability is required or capped.

``pareto(instance, against, points=N)`` solves one instance at N levels of a second criterion:

- ``fairness``: every share at least L (``min_share = max(L, the start-up's own)``) for N
  levels from 0 to the max-min optimum m* (solved first, exactly: ``objective.kind: maxmin``,
  whose plan is the point at m*);
- ``spend``: total spend at most L for N levels from the least spend of any valid plan
  (solved first) to the spend of the value-optimal plan (the last point);
- ``stability``: a re-plan of ``previous`` from ``now``: at most L changes (dropped, moved or
  retimed jobs) for N integer levels from the fewest possible (a re-plan charging each change
  more than all the value there is) to those of the unrestricted re-plan (the last point).

Every point is a full solve with its plan, proven bound and gap (spend and changes limits go
through ``solve(limits=...)``, fairness levels are ``min_share`` floors). Points are solved
through ``whatif.solve_many`` (serially, in local processes or on Dask). A plan meeting a
tighter level is valid at every looser one: serially the points run from the tight end, each
warm-started from its neighbour; in parallel each starts from the tight end's plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..models import Instance, Plan
from ..models.rules import assignment_cost, shares
from ..optimizer.solve import solve
from .whatif import StudyProgress, make_task, solve_many

Against = Literal["fairness", "spend", "stability"]
AGAINST = ("fairness", "spend", "stability")


@dataclass(frozen=True)
class ParetoPoint:
    """One level of the curve and the best plan found under it."""

    level: float
    plan: Plan
    achieved: float | None  # the plan's smallest share, total spend or number of changes

    @property
    def objective(self) -> float | None:
        return self.plan.objective

    @property
    def bound(self) -> float | None:
        return self.plan.bound

    @property
    def gap(self) -> float | None:
        return self.plan.gap


@dataclass
class ParetoCurve:
    """The points in order of level (ascending)."""

    against: Against
    points: list[ParetoPoint]
    anchor: Plan  # the loose end: the max-min plan (fairness) or the unrestricted plan

    @property
    def stage1(self) -> dict[str, Any] | None:
        """fairness: the max-min first stage behind the top level (``m_star``, its proven
        ``bound`` and ``status``; ``feasible`` means the top level may lie below the true m*)."""
        return (self.anchor.summary.get("fairness") or {}).get("stage1")

    def rows(self) -> list[dict[str, Any]]:
        """Plain rows (CSV, tables): level, achieved, objective, bound, gap, status, seconds,
        and ``value_per_unit``: the change of objective per unit of level from the previous
        point (negative: value given up as the requirement tightens)."""
        out = []
        for k, p in enumerate(self.points):
            prev = self.points[k - 1] if k else None
            slope = None
            if prev is not None and p.objective is not None and prev.objective is not None \
                    and p.level != prev.level:
                slope = (p.objective - prev.objective) / (p.level - prev.level)
            out.append({"against": self.against, "level": p.level, "achieved": p.achieved,
                        "status": p.plan.status.value, "objective": p.objective,
                        "bound": p.bound, "gap": p.gap, "value_per_unit": slope,
                        "solve_seconds": p.plan.solve_seconds})
        return out


def _achieved(instance: Instance, against: str, plan: Plan) -> float | None:
    if not plan.is_feasible:
        return None
    if against == "fairness":
        got = shares(instance, plan.assignments)
        return min(got.values()) if got else None
    if against == "spend":
        return sum(assignment_cost(instance, a) for a in plan.assignments)
    return float((plan.summary.get("replan") or {}).get("changed", 0))


def _levels(low: float, high: float, points: int, integral: bool = False) -> list[float]:
    if points <= 1 or high <= low:
        return [high]
    out = [low + (high - low) * k / (points - 1) for k in range(points)]
    if integral:
        out = sorted({float(round(x)) for x in out})
    return out


def _floors(instance: Instance, level: float) -> Instance:
    """The instance with every share at least ``level`` (own floors kept if higher)."""
    data = instance.model_dump(by_alias=True)
    data["objective"] = {**data["objective"], "kind": "value"}
    for s in data["startups"]:
        s["min_share"] = max(level, s["min_share"] or 0.0)
    return Instance.model_validate(data)


def pareto(instance: Instance, against: Against = "fairness", points: int = 5, *,
           backend: str = "cpsat", time_limit: float | None = 60.0, seed: int = 0,
           gap_tolerance: float = 1e-6, workers: int = 1, dask_address: str | None = None,
           previous: Plan | None = None, now: int | None = None,
           progress: StudyProgress | None = None) -> ParetoCurve:
    """The value frontier against ``against`` at ``points`` levels (module docstring).

    ``time_limit`` applies to each solve. ``stability`` needs ``previous`` (and ``now``).
    """
    if against not in AGAINST:
        raise ValueError(f"unknown criterion {against!r}; choose from {', '.join(AGAINST)}")
    if points < 1:
        raise ValueError("points must be at least 1")
    if against == "stability" and previous is None:
        raise ValueError("--against stability needs a previous plan (and --now)")
    opts = {"backend": backend, "time_limit": time_limit, "seed": seed,
            "gap_tolerance": gap_tolerance}
    if against == "fairness":
        data = instance.model_dump(by_alias=True)
        data["objective"] = {**data["objective"], "kind": "maxmin", "fairness_tolerance": 0.0}
        anchor = solve(Instance.model_validate(data), backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance)
        top = (anchor.summary.get("fairness") or {}).get("stage1", {}).get("m_star")
        levels = _levels(0.0, top, points) if top is not None and anchor.is_feasible else []
        tasks = [(lv, _floors(instance, lv), {}) for lv in levels[:-1]]
        valid_everywhere, descending = anchor, True
    elif against == "spend":
        from .credits import solve_custom

        anchor = solve(instance, backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance)
        least = solve_custom(instance, lambda p: -p.cost, **opts)
        high = _achieved(instance, "spend", anchor)
        low = _achieved(instance, "spend", least.plan) if least.plan is not None else None
        levels = _levels(low, high, points) if low is not None and high is not None else []
        tasks = [(lv, instance, {"limits": {"spend": lv}}) for lv in levels[:-1]]
        valid_everywhere, descending = least.plan, False
    else:
        anchor = solve(instance, backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance, previous=previous, now=now)
        # the fewest changes: charge each more than all the value there is
        weight = 1.0 + sum(s.weight * v for s in instance.startups
                           for j in instance.jobs if j.startup == s.id
                           for v in [max(j.option_value(o) for o in j.options)])
        fewest = solve(instance, backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance, previous=previous, now=now,
                       stability=weight)
        high = _achieved(instance, "stability", anchor)
        low = _achieved(instance, "stability", fewest)
        levels = _levels(low, high, points, integral=True) \
            if low is not None and high is not None else []
        tasks = [(lv, instance, {"limits": {"changes": lv}, "previous": previous, "now": now})
                 for lv in levels[:-1]]
        valid_everywhere, descending = fewest, False
    plans = _solve_points(tasks, valid_everywhere, descending, opts, workers, dask_address,
                          progress)
    found = [ParetoPoint(lv, plan, _achieved(instance, against, plan))
             for (lv, _, _), plan in zip(tasks, plans, strict=True)]
    found += [ParetoPoint(lv, anchor, _achieved(instance, against, anchor))
              for lv in levels[-1:]]
    found.sort(key=lambda p: p.level)
    return ParetoCurve(against=against, points=found, anchor=anchor)


def _solve_points(tasks: Sequence[tuple[float, Instance, dict[str, Any]]],
                  valid_everywhere: Plan | None, descending: bool, opts: dict[str, Any],
                  workers: int, dask_address: str | None,
                  progress: StudyProgress | None) -> list[Plan]:
    """Plans of the points in task order. ``valid_everywhere`` meets the tightest level (so
    every level): in parallel every point starts from it; serially the points run from the
    tight end, each warm-started from its tighter neighbour's plan (valid there too)."""
    warm = valid_everywhere if valid_everywhere is not None and \
        valid_everywhere.is_feasible else None
    if workers > 1 or dask_address is not None:
        made = [make_task(f"level {lv:g}", inst, warm_start=warm, **opts, **extra)
                for lv, inst, extra in tasks]
        return solve_many(made, workers=workers, dask_address=dask_address, progress=progress)
    order = list(range(len(tasks)))
    order = order[::-1] if descending else order
    plans: dict[int, Plan] = {}
    for done, k in enumerate(order):
        lv, inst, extra = tasks[k]
        plan = solve_many([make_task(f"level {lv:g}", inst, warm_start=warm, **opts,
                                     **extra)])[0]
        plans[k] = plan
        if plan.is_feasible:
            warm = plan
        if progress is not None:
            progress(done + 1, len(tasks), f"level {lv:g}")
    return [plans[k] for k in range(len(tasks))]


def plot_pareto(curve: ParetoCurve, ax: Any = None) -> Any:
    """Objective against level (filled markers: proven optimal) with the proven bounds drawn
    as an envelope above it; returns the axes (a new Agg figure when ``ax`` is None)."""
    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    pts = [p for p in curve.points if p.objective is not None]
    xs = [p.level for p in pts]
    ax.plot(xs, [p.objective for p in pts], color="#4c72b0", linewidth=1.5, marker="o",
            label="best value found")
    bounded = [p for p in pts if p.bound is not None]
    if bounded:
        ax.fill_between([p.level for p in bounded], [p.objective for p in bounded],
                        [p.bound for p in bounded], color="#4c72b0", alpha=0.15,
                        label="proven bound envelope")
        ax.plot([p.level for p in bounded], [p.bound for p in bounded], color="#4c72b0",
                linewidth=0.8, linestyle="--")
    open_ = [p for p in pts if p.plan.status.value != "optimal"]
    if open_:
        ax.scatter([p.level for p in open_], [p.objective for p in open_], facecolors="white",
                   edgecolors="#dd8452", zorder=3, label="not proven optimal")
    ax.set_xlabel({"fairness": "minimum share required", "spend": "total spend cap",
                   "stability": "changes allowed"}[curve.against])
    ax.set_ylabel("objective")
    ax.set_title(f"Value against {curve.against}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def save_pareto_plot(curve: ParetoCurve, path: str | Path) -> None:
    """Write the plot atomically (PNG, or the format of the suffix)."""
    from .whatif import _save_figure

    _save_figure(plot_pareto(curve).figure, path)


__all__ = ["AGAINST", "ParetoCurve", "ParetoPoint", "pareto", "plot_pareto", "save_pareto_plot"]

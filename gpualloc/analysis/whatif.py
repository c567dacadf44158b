"""What-if studies: solve a base instance and its scenarios side by side, and sweeps.

``run_study`` applies every scenario to the base (all errors reported at once), then solves the
base and the scenarios: serially in this process (``workers=1``), in ``workers`` local
processes (spawned, not forked), or on a Dask distributed cluster (``dask_address``). Every
solve uses one solver thread and the same seed, so the plans do not depend on where they ran
as long as each solve finishes before its time limit (a solve stopped by the clock returns
whatever it had found by then, which depends on the machine's speed).

``sweep`` solves one parameter at several values in order, each point warm-started from the
previous point's plan (the plan is a hint where it is no longer valid).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from ..models import Instance, InstanceError, Issue, Plan, atomic_write_text
from ..models.metrics import plan_metrics
from ..models.scenarios import (
    BASE_NAME,
    CapChange,
    CreditsChange,
    PoolGpusChange,
    Scenario,
    apply,
    apply_with_notes,
    describe,
)
from ..optimizer.solve import solve

StudyProgress = Callable[[int, int, str], None]
"""``progress(done, total, name)``: called in the calling process as each solve finishes."""


# -- running many solves -----------------------------------------------------------------
def make_task(name: str, instance: Instance, *, backend: str, time_limit: float | None,
              seed: int, gap_tolerance: float,
              warm_start: Plan | None = None, previous: Plan | None = None,
              now: int | None = None,
              limits: dict[str, float] | None = None) -> dict[str, Any]:
    """A picklable description of one solve (plain data only) for ``solve_many``; ``previous``,
    ``now`` and ``limits`` are passed on to ``solve`` (re-plans, trade-off curves)."""
    return {"name": name, "instance": instance.model_dump(by_alias=True), "backend": backend,
            "time_limit": time_limit, "seed": seed, "gap_tolerance": gap_tolerance,
            "warm_start": warm_start.model_dump(mode="json") if warm_start else None,
            "previous": previous.model_dump(mode="json") if previous else None,
            "now": now, "limits": limits}


def solve_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task (in any process) and return the plan as plain data."""
    instance = Instance.model_validate(task["instance"])
    warm = Plan.model_validate(task["warm_start"]) if task.get("warm_start") else None
    previous = Plan.model_validate(task["previous"]) if task.get("previous") else None
    plan = solve(instance, task["backend"], time_limit=task["time_limit"], seed=task["seed"],
                 workers=1, gap_tolerance=task["gap_tolerance"], warm_start=warm,
                 previous=previous, now=task.get("now"), limits=task.get("limits"))
    return plan.model_dump(mode="json")


def solve_many(tasks: Sequence[dict[str, Any]], *, workers: int = 1,
               dask_address: str | None = None,
               progress: StudyProgress | None = None,
               run: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[Plan]:
    """Solve ``tasks`` serially, in local processes or on Dask; plans in task order.

    ``run`` (default ``solve_task``) turns one task into a plan's plain data; it must be a
    module-level function, so that worker processes can import it."""
    run = solve_task if run is None else run
    total = len(tasks)
    results: list[dict[str, Any] | None] = [None] * total
    done = 0

    def finished(i: int, data: dict[str, Any]) -> None:
        nonlocal done
        results[i] = data
        done += 1
        if progress is not None:
            progress(done, total, tasks[i]["name"])

    if dask_address is not None:
        from distributed import Client, as_completed

        with Client(dask_address, set_as_default=False) as client, client.as_current():
            tag = uuid.uuid4().hex[:8]
            futures = {client.submit(run, t, key=f"gpualloc-{tag}-{i}", pure=False): i
                       for i, t in enumerate(tasks)}
            for fut in as_completed(list(futures)):
                finished(futures[fut], fut.result())
    elif workers <= 1 or total <= 1:
        for i, t in enumerate(tasks):
            finished(i, run(t))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx) as pool:
            pending = {pool.submit(run, t): i for i, t in enumerate(tasks)}
            for fut in as_completed(pending):
                finished(pending[fut], fut.result())
    return [Plan.model_validate(r) for r in results]


# -- studies -----------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    """One solved scenario (the first result of a study is the unchanged base)."""

    name: str
    instance: Instance
    plan: Plan
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    description: str | None = None

    @property
    def objective(self) -> float | None:
        return self.plan.objective

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """``plan_metrics`` of the plan on the scenario's instance."""
        return plan_metrics(self.instance, self.plan)

    @property
    def jobs_run(self) -> int:
        return len(self.plan.assignments)

    @property
    def spend(self) -> dict[str, float]:
        """Credits spent per start-up."""
        return {sid: s["spend"] for sid, s in self.metrics["startups"].items()}

    @property
    def binding_caps(self) -> list[str]:
        """Caps with at least one window at its limit."""
        return [cid for cid, c in self.metrics["caps"].items()
                if any(w["binding"] for w in c["windows"])]


def prepare(base: Instance, scenarios: Sequence[Scenario]) -> list[tuple[Scenario, Instance,
                                                                          list[str]]]:
    """Apply every scenario to ``base``; all errors of all scenarios are raised together."""
    out = []
    issues: list[Issue] = []
    for i, sc in enumerate(scenarios):
        try:
            inst, notes = apply_with_notes(base, sc.changes, where=f"scenarios[{i}].changes")
        except InstanceError as e:
            issues.extend(e.issues)
            continue
        out.append((sc, inst, notes))
    if issues:
        raise InstanceError(issues)
    return out


def run_study(base: Instance, scenarios: Sequence[Scenario], *, backend: str = "cpsat",
              time_limit: float | None = 60.0, seed: int = 0, workers: int = 1,
              dask_address: str | None = None, progress: StudyProgress | None = None,
              gap_tolerance: float = 1e-6) -> list[ScenarioResult]:
    """Solve the base and every scenario; results in order, the base first (named ``base``).

    ``workers``: local processes (1 = serial in this process); ``dask_address``: a Dask
    scheduler (``tcp://host:port``) to run the solves on instead. Each solve uses one
    solver thread.
    """
    from ..optimizer.backends import get_backend

    get_backend(backend)  # fail early, here, when the backend is missing
    prepared = prepare(base, scenarios)
    entries = [(BASE_NAME, base, [], "the unchanged instance")] + [
        (sc.name, inst, notes, sc.description) for sc, inst, notes in prepared]
    tasks = [make_task(name, inst, backend=backend, time_limit=time_limit, seed=seed,
                       gap_tolerance=gap_tolerance) for name, inst, _, _ in entries]
    plans = solve_many(tasks, workers=workers, dask_address=dask_address, progress=progress)
    return [ScenarioResult(name=name, instance=inst, plan=plan, summary=describe(inst),
                           notes=notes, description=desc)
            for (name, inst, notes, desc), plan in zip(entries, plans, strict=True)]


def comparison_rows(results: Sequence[ScenarioResult]) -> list[dict[str, Any]]:
    """One plain row per result: status, objective, change vs the first (base), spend, caps."""
    base = results[0].objective if results else None
    rows = []
    for r in results:
        obj = r.objective
        delta = obj - base if obj is not None and base is not None else None
        rel = delta / abs(base) if delta is not None and base else None
        rows.append({
            "scenario": r.name,
            "status": r.plan.status.value,
            "objective": obj,
            "bound": r.plan.bound,
            "gap": r.plan.gap,
            "delta": delta,
            "delta_pct": None if rel is None else 100.0 * rel,
            "jobs_run": r.jobs_run,
            "jobs": len(r.instance.jobs),
            "spend": r.spend if r.plan.is_feasible else {},
            "binding_caps": r.binding_caps if r.plan.is_feasible else [],
            "solve_seconds": r.plan.solve_seconds,
            "notes": list(r.notes),
        })
    return rows


# -- sweeps ------------------------------------------------------------------------------
_SWEEP = re.compile(r"^(?P<kind>[a-z_]+):(?P<target>[^=]+)=(?P<lo>[^:]+?)\.\.(?P<hi>[^:]+)"
                    r":(?P<n>[^:]+)$")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
MAX_SWEEP_POINTS = 1000


@dataclass(frozen=True)
class SweepSpec:
    """``KIND:TARGET=FROM..TO:POINTS``, e.g. ``cap:restricted-cn=0.25x..2x:8``.

    ``cap:ID`` and ``credits:ID`` (or ``credits:all``) take factors (``0.5x``) or absolute
    values; ``pool:CLUSTER/ACCELERATOR[@PERIOD]`` takes GPUs to add (``+0..+2000``) from
    ``PERIOD`` (default 0) on, rounded to whole GPUs.
    """

    kind: Literal["cap", "credits", "pool"]
    target: str
    start: float
    stop: float
    points: int
    mode: Literal["scale", "set", "add"]
    from_period: int = 0
    text: str = ""

    def values(self) -> list[float]:
        if self.points == 1:
            vals = [self.start]
        else:
            step = (self.stop - self.start) / (self.points - 1)
            vals = [self.start + k * step for k in range(self.points)]
            vals[-1] = self.stop
        return [float(round(v)) for v in vals] if self.kind == "pool" else vals

    def changes(self, x: float) -> list[Any]:
        if self.kind == "cap":
            return [CapChange(id=self.target, **{self.mode: x})]
        if self.kind == "credits":
            return [CreditsChange(startup=self.target, **{self.mode: x})]
        cluster, accelerator = self.target.split("/", 1)
        return [PoolGpusChange(cluster=cluster, accelerator=accelerator, add=round(x),
                               **{"from": self.from_period})]

    @property
    def axis_label(self) -> str:
        if self.kind == "pool":
            return f"GPUs added to {self.target} from period {self.from_period}"
        what = "limit" if self.kind == "cap" else "credits"
        if self.mode == "scale":
            return f"{self.kind} {self.target}: {what} factor"
        return f"{self.kind} {self.target}: {what}"

    def label(self, x: float) -> str:
        if self.kind == "pool":
            return f"{x:+,.0f}"
        return f"{x:.4g}x" if self.mode == "scale" else f"{x:,.6g}"


def _bad_sweep(message: str) -> InstanceError:
    return InstanceError([Issue("--sweep", message)])


def parse_sweep(text: str) -> SweepSpec:
    """Parse a sweep spec; errors are ``InstanceError`` located at ``--sweep``."""
    m = _SWEEP.match(text.strip())
    if not m:
        raise _bad_sweep(f"expected KIND:TARGET=FROM..TO:POINTS, got {text!r}")
    kind, target = m["kind"], m["target"].strip()
    if kind not in ("cap", "credits", "pool"):
        raise _bad_sweep(f"unknown sweep kind {kind!r}; choose from cap, credits, pool")
    try:
        points = int(m["n"])
    except ValueError:
        raise _bad_sweep(f"POINTS must be a whole number, got {m['n']!r}") from None
    if not 1 <= points <= MAX_SWEEP_POINTS:
        raise _bad_sweep(f"POINTS must be 1..{MAX_SWEEP_POINTS}, got {points}")
    from_period = 0
    if kind == "pool":
        if "@" in target:
            target, _, at = target.partition("@")
            if not re.fullmatch(r"\d+", at):
                raise _bad_sweep(f"pool period after '@' must be a whole number, got {at!r}")
            from_period = int(at)
        if target.count("/") != 1 or not all(target.split("/")):
            raise _bad_sweep(f"pool target must be CLUSTER/ACCELERATOR, got {target!r}")
    if not target:
        raise _bad_sweep("empty target")

    def number(raw: str) -> tuple[float, bool]:
        raw = raw.strip()
        scaled = raw.lower().endswith("x")
        core = raw[:-1] if scaled else raw
        if not re.fullmatch(_NUMBER, core):
            raise _bad_sweep(f"not a number: {raw!r}")
        value = float(core)
        if not math.isfinite(value):
            raise _bad_sweep(f"not a finite number: {raw!r}")
        return value, scaled

    (lo, lo_x), (hi, hi_x) = number(m["lo"]), number(m["hi"])
    if lo_x != hi_x:
        raise _bad_sweep("FROM and TO must both be factors (with x) or both values")
    if kind == "pool":
        if lo_x:
            raise _bad_sweep("pool sweeps take GPUs to add (e.g. +0..+2000), not factors")
        mode = "add"
    else:
        mode = "scale" if lo_x else "set"
        if lo < 0 or hi < 0:
            raise _bad_sweep("cap and credit values must not be negative")
    if points == 1 and lo != hi:
        raise _bad_sweep("one point needs FROM equal to TO")
    return SweepSpec(kind=kind, target=target, start=lo,  # type: ignore[arg-type]
                     stop=hi, points=points, mode=mode,  # type: ignore[arg-type]
                     from_period=from_period, text=text)


def sweep_instances(base: Instance, spec: SweepSpec) -> list[Instance]:
    """The instance at every point of ``spec``; a bad target is located at ``--sweep``."""
    out = []
    for x in spec.values():
        try:
            out.append(apply(base, spec.changes(x), where="--sweep"))
        except InstanceError as e:
            raise InstanceError([Issue("--sweep", i.message) for i in e.issues]) from None
    return out


@dataclass
class SweepPoint:
    """One point of a sweep: the parameter value, the instance there and its plan."""

    x: float
    label: str
    instance: Instance
    plan: Plan

    @property
    def objective(self) -> float | None:
        return self.plan.objective


def sweep(base: Instance, spec: str | SweepSpec, *, backend: str = "cpsat",
          time_limit: float | None = 60.0, seed: int = 0, gap_tolerance: float = 1e-6,
          warm_start: bool = True, progress: StudyProgress | None = None) -> list[SweepPoint]:
    """Solve ``base`` at every point of ``spec`` in order, each warm-started from the last."""
    from ..optimizer.backends import get_backend

    get_backend(backend)
    if isinstance(spec, str):
        spec = parse_sweep(spec)
    values = spec.values()
    instances = sweep_instances(base, spec)
    out: list[SweepPoint] = []
    previous: Plan | None = None
    for k, (x, inst) in enumerate(zip(values, instances, strict=True)):
        plan = solve(inst, backend, time_limit=time_limit, seed=seed, workers=1,
                     gap_tolerance=gap_tolerance,
                     warm_start=previous if warm_start else None)
        if plan.is_feasible:
            previous = plan
        out.append(SweepPoint(x=x, label=spec.label(x), instance=inst, plan=plan))
        if progress is not None:
            progress(k + 1, len(values), spec.label(x))
    return out


def sweep_rows(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        rows.append({"x": p.x, "label": p.label, "status": p.plan.status.value,
                     "objective": p.objective, "bound": p.plan.bound, "gap": p.plan.gap,
                     "jobs_run": len(p.plan.assignments),
                     "solve_seconds": p.plan.solve_seconds})
    return rows


# -- output files ------------------------------------------------------------------------
def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ";".join(str(x) for x in v)
    return v


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text of plain rows; a ``spend`` dict becomes ``spend:<start-up>`` columns."""
    flat = []
    for r in rows:
        row = {k: v for k, v in r.items() if k != "spend"}
        for sid, v in (r.get("spend") or {}).items():
            row[f"spend:{sid}"] = v
        flat.append(row)
    columns: list[str] = []
    for row in flat:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buf.getvalue()


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write rows as CSV, atomically."""
    atomic_write_text(path, rows_to_csv(rows))


def _save_figure(fig: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix or ".png"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=suffix.lstrip(".") or "png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_study(results: Sequence[ScenarioResult], path: str | Path) -> None:
    """Bar chart of the objective per scenario (Agg backend, no pyplot state)."""
    _save_figure(study_figure(results), path)


def study_figure(results: Sequence[ScenarioResult]) -> Any:
    """The figure of ``plot_study``: a bar per scenario, a red X for one without a plan, the
    base scenario's objective as a labelled dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [r.name for r in results]
    values = [r.objective if r.objective is not None else 0.0 for r in results]
    fig = Figure(figsize=(8, max(2.5, 0.4 * len(names) + 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = ["#4c72b0" if r.plan.status.value == "optimal" else
               "#dd8452" if r.plan.is_feasible else "#c44e52" for r in results]
    ax.barh(range(len(names)), values, color=colours)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    missing = [k for k, r in enumerate(results) if not r.plan.is_feasible]
    if missing:  # a zero-width bar would look like objective 0: mark it instead
        ax.plot([0.0] * len(missing), missing, linestyle="none", marker="X", markersize=10,
                color="#c44e52", label="no plan (infeasible or none in time)")
        for k in missing:
            ax.annotate(f"no plan ({results[k].plan.status.value})", (0.0, k),
                        xytext=(8, 0), textcoords="offset points", va="center",
                        color="#c44e52", fontsize=8)
    if results and results[0].objective is not None:
        ax.axvline(results[0].objective, color="black", linewidth=0.8, linestyle="--",
                   label=f"base ({results[0].name}) objective")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("objective (blue optimal, orange feasible, red X no plan)")
    ax.set_title("What-if study")
    fig.tight_layout()
    return fig


def plot_sweep(points: Sequence[SweepPoint], spec: SweepSpec, path: str | Path) -> None:
    """The value curve: parameter on x, objective on y (hollow markers: not proven optimal)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [p.x for p in points if p.objective is not None]
    ys = [p.objective for p in points if p.objective is not None]
    ax.plot(xs, ys, color="#4c72b0", linewidth=1.5)
    opt = [(p.x, p.objective) for p in points if p.plan.status.value == "optimal"]
    other = [(p.x, p.objective) for p in points
             if p.objective is not None and p.plan.status.value != "optimal"]
    if opt:
        ax.scatter(*zip(*opt, strict=True), color="#4c72b0", zorder=3, label="optimal")
    if other:
        ax.scatter(*zip(*other, strict=True), facecolors="none", edgecolors="#dd8452",
                   zorder=3, label="feasible")
    ax.set_xlabel(spec.axis_label)
    ax.set_ylabel("objective")
    ax.set_title(f"Sweep {spec.text or spec.target}")
    ax.grid(True, alpha=0.3)
    if opt or other:
        ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)


__all__ = [
    "ScenarioResult",
    "SweepPoint",
    "SweepSpec",
    "comparison_rows",
    "make_task",
    "parse_sweep",
    "plot_study",
    "plot_sweep",
    "prepare",
    "rows_to_csv",
    "run_study",
    "solve_many",
    "solve_task",
    "sweep",
    "sweep_instances",
    "sweep_rows",
    "write_csv",
]

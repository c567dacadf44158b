"""Why a plan is what it is: ``explain(instance, plan=None) -> Explanation``.

**Infeasible instance.** Infeasibility always comes from mandatory jobs (a plan without them
satisfies every other rule), so the explanation names the mandatory jobs (and the jobs they
need to run first) together with the limits they cannot share, and gives the smallest
relaxation that makes the instance feasible. It works in two steps:

1. *Windows and dependency chains*, structurally: the earliest end of every required job is
   its release (or the latest earliest end of its dependencies) plus its shortest option that
   some allowed cluster can run (``networkx`` topological order). A job whose earliest end is
   past its deadline has a window that is too tight (its own release + shortest option already
   overshoots) or a dependency chain that is too long (named, e.g. ``a -> b -> c``); the
   relaxation is the smallest later deadline (the earliest end). A required job with no option
   any allowed cluster can run (no pool, gang too large, ineligible) cannot be relaxed this
   way and is named as such.
2. *Capacity, caps and credits*, with an **elastic model**: the neutral ``LinearModel`` of the
   instance (deadlines relaxed by step 1, pools uncapped so that placements removed only for
   capacity come back) gets a nonnegative continuous slack ``s_r`` on every capacity, cap,
   share and credit row (``lhs - s_r <= rhs``) and a continuous ``drop_j`` on every mandatory
   assignment row (``sum x + drop_j == 1``). It is solved lexicographically with PuLP (HiGHS,
   else CBC): first the number of dropped mandatory jobs (nonzero only for causes step 1
   names), then the total **normalised slack** ``sum s_r / scale_r`` where ``scale_r`` is the
   row's right-hand side or its largest single coefficient, whichever is larger: GPUs over the
   pool's capacity in that period, TPP / GPUs / GPU-hours over the cap's limit, credits over
   the start-up's credits. A relaxation is thus measured as a fraction of the limit it relaxes,
   which makes GPUs, TPP, GPU-hours and credits comparable. The amounts reported are exact:
   recomputed from the chosen placements (``max(0, lhs - rhs)`` per row), not read from the
   solver's slack.

The relaxation is checked by building the relaxed instance (deadlines moved; pool capacity
raised in exactly the periods that need it, via capacity changes; cap limits raised by the
largest window excess; share fractions raised; credits raised) and solving it with
``optimizer.solve``; ``Explanation.verified`` reports whether that plan is feasible and valid.

**Feasible instance.** With a plan (or after solving), every unscheduled job gets a reason:
``ineligible`` (export rules bar every pool that could run it), ``no_fit`` (no option fits its
window on a pool that can run it), ``predecessor`` (a job it comes after cannot run, or the
chain cannot end by its deadline), or, from a re-solve with the job forced in (warm-started
from the plan, short time limit): ``displaces`` (running it costs ``displaced`` objective value;
``blocking`` names the pools/periods, caps and credits its forced placement would overflow in
the base plan, ``binding`` those tight in the forced plan, ``displaced_jobs`` the jobs that
make room), ``blocked`` (it cannot run at all without breaking a mandatory job or a hard limit;
``blocking`` names them, from the elastic model) or ``addable`` (forcing it in costs nothing: a
time-limited plan left value on the table). Only the ``max_jobs`` most valuable unscheduled
jobs are forced (``not_evaluated`` for the rest); ``time_limited`` marks reasons that come
from a solve stopped by its time limit.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import networkx as nx

from ..models import Assignment, Instance, InstanceError, Job, Plan, SolveStatus
from ..models.metrics import plan_metrics
from ..models.validator import validate
from .backends import Backend, SolveParams, get_backend
from .formulation import LinearModel, Row, build, capacity_rows

DEFAULT_MAX_JOBS = 20
DEFAULT_JOB_TIME_LIMIT = 2.0
_TOL = 1e-6

RequirementKind = Literal["mandatory", "dependency", "window", "placement", "capacity", "cap",
                          "share", "credits"]
RelaxationKind = Literal["deadline", "capacity", "cap", "share", "credits"]
ReasonKind = Literal["ineligible", "no_fit", "predecessor", "displaces", "blocked", "addable",
                     "not_evaluated"]


@dataclass(frozen=True)
class Requirement:
    """One of the conflicting requirements of an infeasible instance."""

    kind: RequirementKind
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Relaxation:
    """Raise ``target`` by ``amount`` ``unit`` (from ``before`` to ``after``) in ``periods``."""

    kind: RelaxationKind
    target: str
    amount: float
    unit: str
    before: float | None = None
    after: float | None = None
    periods: tuple[int, int] | None = None

    def __str__(self) -> str:
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
    jobs: list[JobReason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    time_limited: bool = False

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
            "jobs": [{**asdict(r), "blocking": list(r.blocking), "binding": list(r.binding),
                      "displaced_jobs": list(r.displaced_jobs)} for r in self.jobs],
            "notes": list(self.notes),
            "time_limited": self.time_limited,
        }

    def lines(self) -> list[str]:
        """A human-readable report, one line per item."""
        out = []
        if not self.feasible:
            out.append(f"{self.instance}: infeasible")
            if self.conflicts:
                out.append("conflicting requirements:")
                out.extend(f"  {c}" for c in self.conflicts)
            if self.relaxations:
                out.append("smallest relaxation that makes it feasible:")
                out.extend(f"  {r}" for r in self.relaxations)
            if self.verification:
                out.append(f"check: {self.verification}")
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
    if x is None:
        return "-"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.6g}"


# -- entry point -------------------------------------------------------------------------------
def explain(instance: Instance, plan: Plan | None = None, *, backend: str | Backend = "cpsat",
            time_limit: float = 10.0, max_jobs: int = DEFAULT_MAX_JOBS,
            job_time_limit: float = DEFAULT_JOB_TIME_LIMIT, seed: int = 0) -> Explanation:
    """Explain ``plan`` (solved here when None): conflicts and relaxations of an infeasible
    instance, or a reason per unscheduled job of a feasible one (see the module docstring)."""
    from .solve import solve

    if time_limit <= 0 or job_time_limit <= 0:
        raise ValueError("time limits must be positive")
    if max_jobs < 0:
        raise ValueError("max_jobs must be >= 0")
    engine = get_backend(backend) if isinstance(backend, str) else backend
    notes: list[str] = []
    if plan is None:
        plan = solve(instance, engine, time_limit=time_limit, seed=seed)
    elif plan.instance != instance.name:
        notes.append(f"the plan is for instance {plan.instance!r}, not {instance.name!r}")
    if plan.status == SolveStatus.INFEASIBLE or not plan.is_feasible:
        ex = _explain_infeasible(instance, engine, time_limit, seed)
        ex.plan = plan
        if plan.status == SolveStatus.UNKNOWN:
            ex.notes.insert(0, "the solver found no plan in time; analysed as infeasible")
            if not ex.relaxations and not ex.conflicts:
                ex.notes.append("the elastic model needs no relaxation: the instance is "
                                "feasible, the solve ran out of time")
        ex.notes[:0] = notes
        return ex
    ex = _explain_feasible(instance, plan, engine, max_jobs, job_time_limit, seed)
    ex.notes[:0] = notes
    return ex


# -- structure: options, windows, chains -------------------------------------------------------
def _runnable(instance: Instance, job: Job) -> tuple[dict[int, int], list[str], bool]:
    """Options that some allowed cluster can run, ignoring window and capacity.

    Returns ``{option: periods}``, why the other options cannot run, and whether export
    eligibility bars a pool that could otherwise run one of them.
    """
    usable: dict[int, int] = {}
    why: list[str] = []
    barred = False
    allowed = instance.allowed_clusters(job)
    for k, o in enumerate(job.options):
        reasons = []
        for c in allowed:
            pool = c.pool(o.accelerator)
            if pool is None:
                continue
            if pool.max_gpus_per_job is not None and o.gpus > pool.max_gpus_per_job:
                reasons.append(f"{c.id}/{o.accelerator} takes at most "
                               f"{pool.max_gpus_per_job} GPUs per job")
                continue
            reason = instance.ineligibility(job, o.accelerator, c)
            if reason is not None:
                barred = True
                reasons.append(f"ineligible on {c.id}: {reason}")
                continue
            usable[k] = o.periods
            break
        else:
            if not reasons:
                reasons.append(f"no allowed cluster has a {o.accelerator} pool")
            why.append(f"option {k} ({o.accelerator} x{o.gpus}): {'; '.join(reasons)}")
    return usable, why, barred


def _graph(instance: Instance) -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(j.id for j in instance.jobs)
    for j in instance.jobs:
        g.add_edges_from((d, j.id) for d in j.after)
    return g


@dataclass
class _Timing:
    """Earliest ends along dependency chains (None: the job can never run)."""

    end: dict[str, int | None]
    critical: dict[str, str | None]  # the dependency that sets the earliest start
    usable: dict[str, dict[int, int]]
    why: dict[str, list[str]]
    barred: dict[str, bool]
    late: set[str] = field(default_factory=set)  # earliest end past the deadline

    def chain(self, job: str) -> list[str]:
        out = [job]
        while (prev := self.critical.get(out[-1])) is not None:
            out.append(prev)
        return out[::-1]


def _timing(instance: Instance, graph: nx.DiGraph) -> _Timing:
    t = _Timing({}, {}, {}, {}, {})
    for jid in nx.topological_sort(graph):
        job = instance.job_by_id[jid]
        t.usable[jid], t.why[jid], t.barred[jid] = _runnable(instance, job)
        t.critical[jid] = None
        start: int | None = job.release
        for dep in job.after:
            end = t.end.get(dep)
            if end is None or dep in t.late:
                start = None
                break
            if end > start:
                start, t.critical[jid] = end, dep
        if start is None or not t.usable[jid]:
            t.end[jid] = None
            continue
        t.end[jid] = start + min(t.usable[jid].values())
        if t.end[jid] > instance.deadline(job):
            t.late.add(jid)
    return t


# -- infeasible instances ----------------------------------------------------------------------
def _explain_infeasible(instance: Instance, engine: Backend, time_limit: float,
                        seed: int) -> Explanation:
    from .solve import solve

    began = time.perf_counter()
    ex = Explanation(instance=instance.name, feasible=False)
    graph = _graph(instance)
    mandatory = [j.id for j in instance.jobs if j.mandatory]
    required = set(mandatory)
    for m in mandatory:
        required |= nx.ancestors(graph, m)
    dependants: dict[str, list[str]] = defaultdict(list)
    for m in mandatory:
        for a in nx.ancestors(graph, m):
            dependants[a].append(m)

    # Step 1: windows and chains, with deadlines relaxed as the propagation goes.
    horizon = instance.horizon.periods
    deadlines: dict[str, int] = {}
    timing = _Timing({}, {}, {}, {}, {})
    unfixable = False
    named: set[str] = set()
    for jid in nx.topological_sort(graph):
        if jid not in required:
            continue
        job = instance.job_by_id[jid]
        usable, why, _ = _runnable(instance, job)
        timing.usable[jid], timing.why[jid] = usable, why
        timing.critical[jid] = None
        start: int | None = job.release
        for dep in job.after:
            end = timing.end.get(dep)
            if end is None:
                start = None
                break
            if end > start:
                start, timing.critical[jid] = end, dep
        if not usable:
            timing.end[jid] = None
            unfixable = True
            ex.conflicts.append(Requirement("placement", jid, _role(jid, job, dependants)
                                            + " has no option any allowed cluster can run: "
                                            + "; ".join(why)))
            named.add(jid)
            continue
        if start is None:
            timing.end[jid] = None
            continue
        shortest = min(usable.values())
        end = start + shortest
        timing.end[jid] = end
        deadline = instance.deadline(job)
        if end <= deadline:
            continue
        chain = timing.chain(jid)
        if len(chain) == 1:
            kind: RequirementKind = "window"
            detail = (f"{_role(jid, job, dependants)}: its shortest runnable option takes "
                      f"{shortest} periods, its window [{job.release}, {deadline}) has "
                      f"{deadline - job.release}")
        else:
            kind = "dependency"
            spans = " + ".join(str(min(timing.usable[c].values())) for c in chain)
            first = instance.job_by_id[chain[0]]
            detail = (f"chain {' -> '.join(chain)} takes at least {spans} periods from "
                      f"release {first.release} of {chain[0]}, ending at {end} > deadline "
                      f"{deadline} of {jid}")
        ex.conflicts.append(Requirement(kind, jid, detail))
        named.update(chain)
        if end > horizon:
            unfixable = True
            ex.notes.append(f"job {jid} cannot end before period {end}, past the horizon "
                            f"({horizon}): no deadline relaxation fits")
            continue
        deadlines[jid] = end
        ex.relaxations.append(Relaxation("deadline", jid, float(end - deadline), "periods",
                                         float(deadline), float(end)))
    for jid in sorted(named - {c.name for c in ex.conflicts}, key=_order(instance)):
        job = instance.job_by_id[jid]
        ex.conflicts.append(Requirement("mandatory" if job.mandatory else "dependency", jid,
                                        _role(jid, job, dependants)))

    data = instance.model_dump(by_alias=True)
    for k, job in enumerate(instance.jobs):
        if job.id in deadlines:
            data["jobs"][k]["deadline"] = deadlines[job.id]
    relaxed = Instance.model_validate(data) if deadlines else instance

    # Step 2: the elastic model for capacity, caps, shares and credits.
    remaining = max(0.5, time_limit - (time.perf_counter() - began))
    elastic = _elastic(relaxed, remaining)
    ex.time_limited = elastic.time_limited
    if elastic.time_limited:
        ex.notes.append("the elastic model hit its time limit: the relaxation may not be "
                        "the smallest")
    relaxations, data = _relax(relaxed, elastic, data)
    ex.relaxations.extend(relaxations)
    ex.conflicts.extend(_conflicts(relaxed, elastic, dependants, named))
    if not ex.conflicts and not ex.relaxations:
        ex.notes.append("no conflict found: the elastic model is feasible without relaxing "
                        "anything")

    # Check: the relaxed instance must be feasible.
    if unfixable:
        ex.verified = False
        ex.verification = ("not checked: some required job cannot run under any relaxation "
                           "of deadlines, capacity, caps or credits")
        return ex
    try:
        final = Instance.model_validate(data)
    except (InstanceError, ValueError) as e:  # reported, never raised
        ex.verified = False
        ex.verification = f"could not build the relaxed instance: {e}"
        return ex
    ex.relaxed_instance = final
    remaining = max(1.0, time_limit - (time.perf_counter() - began))
    check = solve(final, engine, time_limit=remaining, seed=seed)
    violations = validate(final, check) if check.is_feasible else []
    ex.verified = check.is_feasible and not violations
    if ex.verified:
        ex.verification = (f"the relaxed instance solves {check.status.value} with "
                           f"{check.backend} (objective {_num(check.objective)}) and the plan "
                           "passes the validator")
    elif check.is_feasible:
        ex.verification = f"the relaxed instance's plan breaks {violations[0]}"
    else:
        ex.verification = (f"the relaxed instance is still {check.status.value} with "
                           f"{check.backend}")
    return ex


def _order(instance: Instance) -> Callable[[str], int]:
    index = {j.id: k for k, j in enumerate(instance.jobs)}
    return lambda jid: index.get(jid, 0)


def _role(jid: str, job: Job, dependants: dict[str, list[str]]) -> str:
    if job.mandatory:
        return f"mandatory job {jid}"
    who = ", ".join(sorted(dependants.get(jid, [])))
    return f"job {jid} (must run: mandatory {who} comes after it)"


@dataclass
class _Elastic:
    """The elastic model's solution: chosen placements and the excess of every soft row."""

    model: LinearModel
    values: list[float]
    excess: dict[int, float]  # row index -> exact max(0, lhs - rhs)
    capacity: dict[int, tuple[str, str, int, int]]  # row -> cluster, accelerator, t, capacity
    dropped: list[str]
    time_limited: bool
    solver: str


def _uncapped(instance: Instance) -> Instance:
    """The instance with every pool as large as the largest option (no capacity removal)."""
    biggest = max((o.gpus for j in instance.jobs for o in j.options), default=1)
    data = instance.model_dump(by_alias=True)
    for c in data["clusters"]:
        for p in c["pools"]:
            p["gpus"] = max(biggest, p["gpus"], *(ch["gpus"] for ch in p["capacity"]))
            p["capacity"] = []
    return Instance.model_validate(data)


def _elastic(instance: Instance, time_limit: float) -> _Elastic:
    model = build(_uncapped(instance))
    model.rows = [r for r in model.rows if r.kind != "capacity"]
    capacity: dict[int, tuple[str, str, int, int]] = {}
    for row in capacity_rows(model, instance):  # the real pools over the uncapped placements
        cluster, accelerator, t = row.key
        capacity[len(model.rows)] = (str(cluster), str(accelerator), int(t), int(row.rhs))
        model.rows.append(row)
    soft = [k for k, r in enumerate(model.rows) if r.kind in ("capacity", "cap", "credits")]
    # One slack per relaxable quantity: a pool in one period, a cap's limit (shared by all its
    # windows), a share row, a start-up's credits.
    groups: dict[str, list[int]] = defaultdict(list)
    for k in soft:
        name = model.rows[k].name
        groups[f"cap[{_parse(name)[0]}]" if name.startswith("cap[") else name].append(k)
    drops = [k for k, r in enumerate(model.rows) if r.kind == "assign" and r.sense == "=="]
    values, time_limited, solver = _solve_elastic(model, list(groups.values()), drops,
                                                  time_limit)
    excess = {}
    for k in soft:
        row = model.rows[k]
        lhs = math.fsum(c * values[v] for v, c in zip(row.vars, row.coefs, strict=True))
        if lhs > row.rhs + _TOL * max(1.0, abs(row.rhs)):
            excess[k] = lhs - row.rhs
    dropped = [model.rows[k].name[len("assign["):-1] for k in drops
               if sum(values[v] for v in model.rows[k].vars) < 0.5]
    return _Elastic(model, values, excess, capacity, dropped, time_limited, solver)


def _solve_elastic(model: LinearModel, groups: list[list[int]], drops: list[int],
                   time_limit: float) -> tuple[list[float], bool, str]:
    """Lexicographic: fewest dropped mandatory jobs, then least normalised slack.

    Each group of rows shares one slack variable. A small private PuLP adapter (binaries plus
    continuous slack), HiGHS if present, else CBC.
    """
    import pulp

    began = time.perf_counter()
    prob = pulp.LpProblem("elastic", pulp.LpMinimize)
    x = [prob.add_variable(f"x{i}", cat=pulp.LpBinary) for i in range(model.num_vars)]
    slack_of = {k: g for g, rows in enumerate(groups) for k in rows}
    slack = [prob.add_variable(f"s{g}", lowBound=0) for g in range(len(groups))]
    drop = {k: prob.add_variable(f"d{k}", lowBound=0, upBound=1) for k in drops}
    senses = {"<=": pulp.LpConstraintLE, ">=": pulp.LpConstraintGE, "==": pulp.LpConstraintEQ}
    for k, row in enumerate(model.rows):
        terms = [(x[i], c) for i, c in zip(row.vars, row.coefs, strict=True)]
        if k in slack_of:
            terms.append((slack[slack_of[k]], -1.0))
        if k in drop:
            terms.append((drop[k], 1.0))
        prob.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(terms), senses[row.sense],
                                             f"r{k}", row.rhs))
    weights = [1.0 / max(1e-9, *(abs(model.rows[k].rhs) for k in rows),
                         *(abs(c) for k in rows for c in model.rows[k].coefs))
               for rows in groups]
    time_limited = False
    solver_name = ""
    phases = []
    if drop:
        phases.append(("drops", pulp.lpSum(drop.values())))
    if slack:
        phases.append(("slack", pulp.lpSum(w * v for w, v in zip(weights, slack, strict=True))))
    for n, (phase, objective) in enumerate(phases):
        prob.setObjective(objective)
        left = max(0.2, time_limit - (time.perf_counter() - began)) / (len(phases) - n)
        limited, solver_name = _run(prob, left)
        time_limited |= limited
        if phase == "drops" and slack:
            best = sum(v.varValue or 0.0 for v in drop.values())
            prob.addConstraint(pulp.lpSum(drop.values()) <= round(best) + 1e-6, "fewest_drops")
    values = [1.0 if (v.varValue or 0.0) > 0.5 else 0.0 for v in x] if phases else \
        [0.0] * model.num_vars
    return values, time_limited, solver_name


def _run(prob: Any, time_limit: float) -> tuple[bool, str]:
    """Solve ``prob`` with HiGHS (through highspy) or CBC; return (time-limited, solver)."""
    import pulp

    began = time.perf_counter()
    try:
        import highspy  # noqa: F401

        from .backends.mip import _swallow_highs_banner, pulp_highs

        if not pulp.HiGHS(msg=False).available():
            raise ImportError("HiGHS unavailable")
        _swallow_highs_banner()
        solver = pulp_highs(1, msg=False, timeLimit=time_limit, gapRel=1e-9)
        prob.solve(solver)
        status = prob.solverModel.modelStatusToString(prob.solverModel.getModelStatus())
        return "time limit" in status.lower(), "highs"
    except ImportError:
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, math.ceil(time_limit)),
                                   gapRel=1e-9)
        prob.solve(solver)
        return time.perf_counter() - began >= 0.95 * max(1, math.ceil(time_limit)), "cbc"


def _parse(name: str) -> tuple[str, str]:
    """``cap[id,label]`` -> (id, label); ``credits[id]`` -> (id, '')."""
    inner = name[name.index("[") + 1:-1]
    if name.startswith("credits["):
        return inner, ""
    ident, _, label = inner.rpartition(",")
    return ident, label


def _span(label: str) -> tuple[int, int]:
    first, _, last = label.partition("-")
    return int(first), int(last or first)


def _relax(instance: Instance, el: _Elastic,
           data: dict[str, Any]) -> tuple[list[Relaxation], dict[str, Any]]:
    """Relaxations from the elastic solution, and the relaxed instance data."""
    out: list[Relaxation] = []
    model = el.model
    # Capacity: exact extra GPUs per pool and period, grouped into ranges of equal need.
    extra: dict[tuple[str, str], dict[int, tuple[int, int]]] = defaultdict(dict)
    for k, amount in el.excess.items():
        if k in el.capacity:
            cid, acc, t, cap = el.capacity[k]
            extra[(cid, acc)][t] = (math.ceil(amount - _TOL), cap)
    for (cid, acc), per in sorted(extra.items()):
        ts = sorted(per)
        first = ts[0]
        for n, t in enumerate(ts):
            last = n + 1 == len(ts) or ts[n + 1] != t + 1 or per[ts[n + 1]] != per[t]
            if last:
                gpus, cap = per[t]
                out.append(Relaxation("capacity", f"{cid}/{acc}", float(gpus), "GPUs",
                                      float(cap), float(cap + gpus), (first, t)))
                if n + 1 < len(ts):
                    first = ts[n + 1]
        ci = next(i for i, c in enumerate(instance.clusters) if c.id == cid)
        pool = instance.clusters[ci].pool(acc)
        assert pool is not None
        pi = next(i for i, p in enumerate(instance.clusters[ci].pools) if p.accelerator == acc)
        new = [pool.gpus_at(t) + per.get(t, (0, 0))[0]
               for t in range(instance.horizon.periods)]
        pd = data["clusters"][ci]["pools"][pi]
        pd["gpus"] = new[0]
        pd["capacity"] = [{"from": t, "gpus": new[t]} for t in range(1, len(new))
                          if new[t] != new[t - 1]]

    # Caps: one limit per cap, raised by its largest window excess.
    caps = {c.id: (k, c) for k, c in enumerate(instance.caps)}
    cap_excess: dict[str, list[tuple[tuple[int, int], float]]] = defaultdict(list)
    share_windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for k, amount in el.excess.items():
        row = model.rows[k]
        if row.kind != "cap":
            continue
        ident, label = _parse(row.name)
        if row.name.startswith("share["):
            share_windows[ident].append(_span(label))
        else:
            cap_excess[ident].append((_span(label), amount))
    for ident, windows in cap_excess.items():
        k, cap = caps[ident]
        assert cap.limit is not None
        amount = max(a for _, a in windows)
        periods = (min(w[0] for w, _ in windows), max(w[1] for w, _ in windows))
        out.append(Relaxation("cap", ident, amount, cap.metric, cap.limit, cap.limit + amount,
                              periods))
        data["caps"][k]["limit"] = cap.limit + amount
    if share_windows:
        from ..models.validator import cap_use

        chosen = model.decode(el.values)
        for ident, windows in share_windows.items():
            k, cap = caps[ident]
            assert cap.fraction is not None
            use, share = cap_use(instance, cap, chosen)
            assert share is not None
            need = cap.fraction
            for first, last in windows:
                u = math.fsum(use[first:last + 1])
                s = math.fsum(share[first:last + 1])
                need = max(need, u / s if s > 0 else math.inf)
            periods = (min(w[0] for w in windows), max(w[1] for w in windows))
            if need <= 1.0:
                out.append(Relaxation("share", ident, need - cap.fraction, "fraction",
                                      cap.fraction, need, periods))
                data["caps"][k]["fraction"] = need
            else:
                out.append(Relaxation("share", ident, 1.0 - cap.fraction, "fraction",
                                      cap.fraction, None, periods))
                data["caps"][k]["share_of"] = None
                data["caps"][k]["fraction"] = None
                if cap.limit is None:
                    data["caps"][k]["limit"] = 1e18

    # Credits.
    startups = {s.id: k for k, s in enumerate(instance.startups)}
    for k, amount in el.excess.items():
        row = model.rows[k]
        if row.kind != "credits":
            continue
        sid, _ = _parse(row.name)
        s = instance.startups[startups[sid]]
        assert s.credits is not None
        out.append(Relaxation("credits", sid, amount, "credits", s.credits,
                              s.credits + amount))
        data["startups"][startups[sid]]["credits"] = s.credits + amount
    return out, data


def _conflicts(instance: Instance, el: _Elastic, dependants: dict[str, list[str]],
               named: set[str]) -> list[Requirement]:
    """The relaxed limits, and the required jobs whose placements meet in them."""
    out: list[Requirement] = []
    model = el.model
    jobs: set[str] = set()
    seen: set[str] = set()
    for k in sorted(el.excess):
        row = model.rows[k]
        for v, c in zip(row.vars, row.coefs, strict=True):
            if el.values[v] > 0.5 and c > 0:
                jobs.add(model.placements[v].job)
        if k in el.capacity:
            cid, acc, _, _ = el.capacity[k]
            key = f"capacity[{cid},{acc}]"
            if key not in seen:
                seen.add(key)
                ts = sorted(el.capacity[j][2] for j in el.excess
                            if j in el.capacity and el.capacity[j][:2] == (cid, acc))
                caps = sorted({el.capacity[j][3] for j in el.excess
                               if j in el.capacity and el.capacity[j][:2] == (cid, acc)})
                out.append(Requirement("capacity", key, f"pool {cid}/{acc} has "
                                       f"{'/'.join(map(str, caps))} GPUs in periods "
                                       f"{_ranges(ts)}"))
            continue
        ident, _ = _parse(row.name)
        if row.kind == "credits":
            s = instance.startup_by_id[ident]
            out.append(Requirement("credits", row.name, f"start-up {ident} holds "
                                   f"{_num(s.credits)} credits"))
            continue
        cap = next(c for c in instance.caps if c.id == ident)
        key = f"{'share' if row.name.startswith('share[') else 'cap'}[{ident}]"
        if key in seen:
            continue
        seen.add(key)
        if key.startswith("share"):
            out.append(Requirement("share", key, f"cap {ident}: {cap.metric} at most "
                                   f"{cap.fraction:g} of its share_of scope per {cap.per}"))
        else:
            out.append(Requirement("cap", key, f"cap {ident}: {cap.metric} at most "
                                   f"{_num(cap.limit)} per {cap.per}"))
    for jid in sorted(jobs - named, key=_order(instance)):
        job = instance.job_by_id[jid]
        if job.mandatory or jid in dependants:
            a = next(p for v, p in enumerate(model.placements)
                     if el.values[v] > 0.5 and p.job == jid)
            kind: RequirementKind = "mandatory" if job.mandatory else "dependency"
            out.append(Requirement(kind, jid, f"{_role(jid, job, dependants)} needs "
                                   f"{a.gpus} {a.accelerator} GPUs for {a.periods} periods "
                                   f"(e.g. on {a.cluster}, periods {a.start}-{a.end - 1})"))
    return out


def _ranges(ts: list[int]) -> str:
    parts = []
    start = prev = ts[0]
    for t in [*ts[1:], None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if t is not None:
            start = prev = t
    return ", ".join(parts)


# -- feasible instances: why each unscheduled job is out ---------------------------------------
def _best_value(instance: Instance, job: Job) -> float:
    weight = instance.startup_by_id[job.startup].weight
    return weight * max((job.option_value(o) for o in job.options), default=0.0)


def _explain_feasible(instance: Instance, plan: Plan, engine: Backend, max_jobs: int,
                      job_time_limit: float, seed: int) -> Explanation:
    ex = Explanation(instance=instance.name, feasible=True, plan=plan)
    model = build(instance)
    graph = _graph(instance)
    timing = _timing(instance, graph)
    base_values = model.encode(list(plan.assignments))
    base_obj = model.objective_value(base_values)
    if model.check(base_values) or len([a for a in plan.assignments
                                        if a.job in instance.job_by_id]) != \
            int(sum(base_values)):
        ex.notes.append("the plan does not fit this instance's model exactly; reasons are "
                        "relative to the part of it that does")
    base_limited = plan.status != SolveStatus.OPTIMAL
    if base_limited:
        ex.notes.append(f"the plan is {plan.status.value}, not proven optimal: displaced "
                        "values are relative to it")

    unscheduled = [instance.job_by_id[j] for j in plan.unscheduled if j in instance.job_by_id]
    structural: dict[str, JobReason] = {}
    for job in unscheduled:
        r = _structural(instance, model, timing, job)
        if r is not None:
            structural[job.id] = r
    forced = sorted((j for j in unscheduled if j.id not in structural),
                    key=lambda j: -_best_value(instance, j))
    evaluated: dict[str, JobReason] = {}
    for job in forced[:max_jobs]:
        needs = {job.id} | nx.ancestors(graph, job.id)
        evaluated[job.id] = _force(instance, model, engine, job, plan, base_values, base_obj,
                                   needs, base_limited, job_time_limit, seed)
    for job in unscheduled:
        r = structural.get(job.id) or evaluated.get(job.id)
        if r is None:
            r = JobReason(job.id, "not_evaluated", f"not among the {max_jobs} most valuable "
                          "unscheduled jobs forced in (raise max_jobs)",
                          _best_value(instance, job))
        ex.jobs.append(r)
    ex.time_limited = base_limited or any(r.time_limited for r in ex.jobs)
    return ex


def _structural(instance: Instance, model: LinearModel, timing: _Timing,
                job: Job) -> JobReason | None:
    """Reasons that need no solve: ineligible, no fit, predecessor out or chain too long."""
    value = _best_value(instance, job)
    if not timing.usable[job.id]:
        kind: ReasonKind = "ineligible" if timing.barred[job.id] else "no_fit"
        head = ("export rules bar every pool that could run it" if kind == "ineligible"
                else "no allowed cluster can run any of its options")
        return JobReason(job.id, kind, f"{head}: {'; '.join(timing.why[job.id])}", value)
    for dep in job.after:
        if timing.end.get(dep) is None or dep in timing.late:
            return JobReason(job.id, "predecessor", f"it comes after {dep}, which can never "
                             "run", value)
    deadline = instance.deadline(job)
    end = timing.end[job.id]
    assert end is not None
    if end > deadline:
        chain = timing.chain(job.id)
        if len(chain) == 1:
            return JobReason(job.id, "no_fit", f"no runnable option fits its window "
                             f"[{job.release}, {deadline})", value)
        return JobReason(job.id, "predecessor", f"the chain {' -> '.join(chain)} cannot end "
                         f"before period {end}, after its deadline {deadline}", value)
    if not model.by_job[job.id]:
        return JobReason(job.id, "no_fit", f"no pool that can run its options has enough "
                         f"GPUs at any start in its window [{job.release}, {deadline})",
                         value)
    return None


def _force(instance: Instance, model: LinearModel, engine: Backend, job: Job, plan: Plan,
           base_values: list[float], base_obj: float, needs: set[str], base_limited: bool,
           time_limit: float, seed: int) -> JobReason:
    """Re-solve with ``job`` forced in; compare with the base plan.

    ``blocking`` are the limits that the placements of the job and of the predecessors it
    needs (``needs``, those not in the base plan) would overflow if added to the base plan.
    """
    value = _best_value(instance, job)
    idx = model.by_job[job.id]
    # Named like a mandatory assignment row, which is what it is for the re-solve.
    model.rows.append(Row("assign", f"assign[{job.id}]", list(idx), [1.0] * len(idx), "==",
                          1.0))
    try:
        raw = engine.solve(model, SolveParams(time_limit=time_limit, seed=seed), base_values)
    finally:
        model.rows.pop()
    limited = base_limited or raw.status != "optimal"
    outs = [d for d in job.after if plan.assignment(d) is None]
    pre = f"(its predecessor(s) {', '.join(outs)} are out too) " if outs else ""
    if raw.values is None:
        blocking = _blocking_elastic(instance, job, time_limit)
        if raw.status == "infeasible":
            detail = f"it cannot run {pre}without breaking a mandatory job or a hard limit"
            return JobReason(job.id, "blocked", detail, value, blocking=blocking,
                             time_limited=base_limited)
        return JobReason(job.id, "blocked", f"no plan with it {pre}found in "
                         f"{time_limit:g}s", value, blocking=blocking, time_limited=True)
    forced_obj = model.objective_value(raw.values)
    displaced = base_obj - forced_obj
    assignments = model.decode(raw.values)
    forced_plan = Plan(instance=instance.name, status=SolveStatus.FEASIBLE,
                       objective=forced_obj, assignments=tuple(assignments),
                       unscheduled=tuple(j.id for j in instance.jobs
                                         if all(a.job != j.id for a in assignments)))
    mine = next(a for a in assignments if a.job == job.id)
    base_jobs = {a.job: a for a in plan.assignments}
    forced_jobs = {a.job: a for a in assignments}
    gone = tuple(j for j in base_jobs if j not in forced_jobs)
    new_vars = [i for i, v in enumerate(raw.values) if v > 0.5 and base_values[i] < 0.5
                and model.placements[i].job in needs and model.placements[i].job not in base_jobs]
    blocking = _overflow(model, base_values, new_vars)
    binding = _binding(instance, plan_metrics(instance, forced_plan), mine)
    where = {"cluster": mine.cluster, "accelerator": mine.accelerator, "gpus": mine.gpus,
             "start": mine.start, "end": mine.end}
    if displaced < -_TOL * max(1.0, abs(base_obj)):
        return JobReason(job.id, "addable", f"forcing it in raises the objective by "
                         f"{_num(-displaced)}: the plan left value on the table", value,
                         displaced, where, blocking, binding, gone, True)
    text = (f"running it {pre}on {mine.cluster}/{mine.accelerator} in periods "
            f"{mine.start}-{mine.end - 1} costs {_num(max(0.0, displaced))} objective value")
    if gone:
        text += f", displacing {', '.join(gone)}"
    return JobReason(job.id, "displaces", text, value, max(0.0, displaced), where, blocking,
                     binding, gone, limited)


def _overflow(model: LinearModel, base: list[float], new_vars: list[int]) -> tuple[str, ...]:
    """Limits that adding ``new_vars`` to the base plan would overflow, grouped for reading."""
    new = set(new_vars)
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    caps: dict[tuple[str, str], list[int]] = defaultdict(list)
    names: list[str] = []
    for row in model.rows:
        if row.kind not in ("capacity", "cap", "credits"):
            continue
        if not any(v in new for v in row.vars):
            continue
        lhs = sum(c * base[v] for v, c in zip(row.vars, row.coefs, strict=True))
        lhs += sum(c for v, c in zip(row.vars, row.coefs, strict=True) if v in new)
        if lhs <= row.rhs + _TOL * max(1.0, abs(row.rhs)):
            continue
        if row.kind == "capacity":
            inner = row.name[len("capacity["):-1]
            rest, _, t = inner.rpartition(",")
            cid, _, acc = rest.rpartition(",")
            pools[(cid, acc)].append(int(t))
        elif row.kind == "credits":
            names.append(f"credits of {_parse(row.name)[0]}")
        else:
            ident, label = _parse(row.name)
            what = "share of cap" if row.name.startswith("share[") else "cap"
            caps[(what, ident)].extend(range(_span(label)[0], _span(label)[1] + 1))
    out = [f"pool {cid}/{acc} periods {_ranges(sorted(ts))}" for (cid, acc), ts in
           pools.items()]
    out += [f"{what} {ident} periods {_ranges(sorted(set(ts)))}"
            for (what, ident), ts in caps.items()]
    return tuple(out + names)


def _binding(instance: Instance, metrics: dict[str, Any], a: Assignment) -> tuple[str, ...]:
    """Limits that are tight in the forced plan and that the forced assignment uses."""
    out = []
    pool = metrics["pools"].get(f"{a.cluster}/{a.accelerator}")
    if pool is not None:
        ts = [t for t in range(a.start, a.end) if pool["used"][t] >= pool["capacity"][t] > 0]
        if ts:
            out.append(f"pool {a.cluster}/{a.accelerator} full in periods {_ranges(ts)}")
    job = instance.job_by_id[a.job]
    cluster = instance.cluster_by_id[a.cluster]
    for cap in instance.caps:
        if not cap.matches(instance, job, cluster, a.accelerator):
            continue
        hits = [w["periods"] for w in metrics["caps"][cap.id]["windows"] if w["binding"]
                and w["periods"][0] < a.end and w["periods"][1] >= a.start]
        if hits:
            out.append(f"cap {cap.id} at its limit ({len(hits)} window(s) from period "
                       f"{hits[0][0]})")
    s = metrics["startups"][job.startup]
    if s["credits"] is not None and s["spend"] >= s["credits"] * (1 - _TOL):
        out.append(f"credits of {job.startup} spent ({_num(s['spend'])} of "
                   f"{_num(s['credits'])})")
    return tuple(out)


def _blocking_elastic(instance: Instance, job: Job, time_limit: float) -> tuple[str, ...]:
    """For a job that cannot be forced in: the elastic model of the instance with it mandatory."""
    data = instance.model_dump(by_alias=True)
    k = next(i for i, j in enumerate(instance.jobs) if j.id == job.id)
    data["jobs"][k]["mandatory"] = True
    forced = Instance.model_validate(data)
    el = _elastic(forced, time_limit)
    relaxations, _ = _relax(forced, el, forced.model_dump(by_alias=True))
    out = [str(r) for r in relaxations]
    if el.dropped:
        out.append(f"cannot place {', '.join(el.dropped)} at all (window or dependencies)")
    return tuple(out)


__all__ = ["DEFAULT_MAX_JOBS", "Explanation", "JobReason", "Relaxation", "Requirement",
           "explain"]

"""The elastic model of an infeasible instance and the smallest relaxation read from it.

The neutral ``LinearModel`` of the instance (pools uncapped so that placements removed only for
capacity come back) gets a nonnegative continuous slack ``s_r`` on every capacity, cap, share,
credit, tranche and floor row (``lhs - s_r <= rhs``; a floor ``lhs + s_r >= rhs``) and a
continuous ``drop_j`` on every mandatory assignment row (``sum x + drop_j == 1``). A start-up
with tranches has one slack per tranche, shared by every credit window that tranche counts in
(``_Slacks``), so a relaxation raises a tranche, by index, never the total. It is solved
lexicographically with PuLP (HiGHS, else CBC): first
the number of dropped mandatory jobs, then the total **normalised slack** ``sum s_r / scale_r``
where ``scale_r`` is the row's right-hand side or its largest single coefficient, whichever is
larger: GPUs over the pool's capacity in that period, TPP / GPUs / GPU-hours over the cap's
limit, credits over the start-up's credits. A relaxation is thus measured as a fraction of the
limit it relaxes, which makes GPUs, TPP, GPU-hours and credits comparable. The amounts reported
are exact: recomputed from the chosen placements (``max(0, lhs - rhs)`` per row), not read
from the solver's slack.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ...models import Instance, Startup
from ...optimizer.model.formulation import LinearModel, Row, build, capacity_rows
from .explanation import _TOL, Relaxation


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
    proven: bool = False  # the least normalised slack is proven optimal
    norm: float = 0.0  # that least normalised slack (sum of fractions of the limits added)
    tranches: dict[tuple[str, int], float] = field(default_factory=dict)  # credits to add


def _uncapped(instance: Instance) -> Instance:
    """The instance with every pool as large as the largest option (no capacity removal)."""
    biggest = max((o.gpus for j in instance.jobs for o in j.options), default=1)
    data = instance.model_dump(by_alias=True)
    for c in data["clusters"]:
        for p in c["pools"]:
            p["gpus"] = max(biggest, p["gpus"], *(ch["gpus"] for ch in p["capacity"]))
            p["capacity"] = []
    return Instance.model_validate(data)


SOFT = ("capacity", "cap", "credits", "tranche", "floor")


def _elastic(instance: Instance, time_limit: float) -> _Elastic:
    model = build(_uncapped(instance), presolve=False)  # its rows are relaxed below
    model.rows = [r for r in model.rows if r.kind != "capacity"]
    capacity: dict[int, tuple[str, str, int, int]] = {}
    for row in capacity_rows(model, instance):  # the real pools over the uncapped placements
        cluster, accelerator, t = row.key
        capacity[len(model.rows)] = (str(cluster), str(accelerator), int(t), int(row.rhs))
        model.rows.append(row)
    soft = [k for k, r in enumerate(model.rows) if r.kind in SOFT]
    slacks = _Slacks(instance, model, soft)
    drops = [k for k, r in enumerate(model.rows) if r.kind == "assign" and r.sense == "=="]
    values, time_limited, solver, proven, norm = _solve_elastic(model, slacks, drops,
                                                                time_limit)
    excess = {}
    for k in soft:
        row = model.rows[k]
        lhs = math.fsum(c * values[v] for v, c in zip(row.vars, row.coefs, strict=True))
        over = row.rhs - lhs if row.sense == ">=" else lhs - row.rhs
        if over > _TOL * max(1.0, abs(row.rhs)):
            excess[k] = over
    dropped = [model.rows[k].name[len("assign["):-1] for k in drops
               if sum(values[v] for v in model.rows[k].vars) < 0.5]
    return _Elastic(model, values, excess, capacity, dropped, time_limited, solver, proven,
                    norm, slacks.tranche_needs(model, excess))


class _Slacks:
    """One nonnegative slack per relaxable quantity, each with its scale, and the slacks of
    every soft row (``terms[k]``: slack indices).

    A pool in one period, a cap's limit (shared by all its windows), a share row, a start-up's
    credits and a floor each have one slack on their own rows. A start-up with tranches has
    one slack per tranche, the credits added to it: it loosens every credit window of the
    start-up that the tranche's release counts in (carry-over: the cumulative windows from its
    ``from`` on and the credits row; without carry-over: its own window and the credits
    row). The windows before the first tranche have none: they stay hard.
    """

    def __init__(self, instance: Instance, model: LinearModel, soft: list[int]) -> None:
        self.names: list[str] = []
        self.terms: dict[int, list[int]] = {}
        self.tranche_of: dict[int, tuple[str, int]] = {}  # slack -> (start-up, tranche)
        index: dict[str, int] = {}

        def slack(name: str) -> int:
            if name not in index:
                index[name] = len(self.names)
                self.names.append(name)
            return index[name]

        startups = instance.startup_by_id
        for k in soft:
            row = model.rows[k]
            if row.kind in ("tranche", "credits") and startups[_parse(row.name)[0]].tranches:
                s = startups[_parse(row.name)[0]]
                ts = _applicable(s, row, instance.horizon.periods)
                self.terms[k] = []
                for n in ts:
                    g = slack(f"tranche[{s.id},{n}]")
                    self.tranche_of[g] = (s.id, n)
                    self.terms[k].append(g)
                continue
            name = row.name
            if name.startswith("cap["):
                name = f"cap[{_parse(name)[0]}]"
            self.terms[k] = [slack(name)]
        scale = [1e-9] * len(self.names)
        for k, gs in self.terms.items():
            row = model.rows[k]
            size = max(abs(row.rhs), *(abs(c) for c in row.coefs), 0.0)
            for g in gs:
                if g not in self.tranche_of:
                    scale[g] = max(scale[g], size)
        for g, (sid, n) in self.tranche_of.items():
            coefs = [abs(c) for k, gs in self.terms.items() if g in gs for c in model.rows[k].coefs]
            scale[g] = max(1e-9, startups[sid].tranches[n].credits, *coefs)
        self.scale = scale
        self.row_scale = {k: max((scale[g] for g in gs), default=1.0)
                          for k, gs in self.terms.items()}

    def tranche_needs(self, model: LinearModel,
                      excess: dict[int, float]) -> dict[tuple[str, int], float]:
        """Exact credits to add per tranche for the chosen placements: the windows in order
        (the credits row last), each short of ``excess`` after what earlier windows added
        gets the rest on its tranche of largest scale (every tranche a window counts also
        counts in every later window, so this is the least normalised amount)."""
        need: dict[int, float] = defaultdict(float)
        rows = sorted((k for k in excess if k in self.terms and self.terms[k]
                       and all(g in self.tranche_of for g in self.terms[k])),
                      key=lambda k: (model.rows[k].kind == "credits",
                                     model.rows[k].key[2] if model.rows[k].key else 0))
        for k in rows:
            gs = self.terms[k]
            short = excess[k] - math.fsum(need[g] for g in gs)
            if short > _TOL * max(1.0, abs(model.rows[k].rhs)):
                need[max(gs, key=lambda g: (self.scale[g], self.tranche_of[g][1]))] += short
        return {self.tranche_of[g]: a for g, a in need.items() if a > 0}


def _applicable(startup: Startup, row: Row, horizon: int) -> list[int]:
    """The tranches whose credits count in the credit window ``row`` of ``startup``."""
    froms = [t.from_ for t in startup.tranches]
    if row.kind == "credits":
        return list(range(len(froms)))
    _, first, last = row.key
    if startup.carry_over:
        return [n for n, f in enumerate(froms) if f <= int(last)]
    return [n for n, f in enumerate(froms) if f == int(first)]


def _solve_elastic(model: LinearModel, slacks: _Slacks, drops: list[int],
                   time_limit: float) -> tuple[list[float], bool, str, bool, float]:
    """Lexicographic: fewest dropped mandatory jobs, then least normalised slack.

    Each slack is measured in units of its scale (the rows are divided by the largest scale
    of their slacks, so the slack is the fraction of the limit added and every coefficient
    stays near 1: HiGHS has been seen to claim optimality at 1.13 with a dual bound of 0 when
    the slack carried 1e-7 objective weights). A small private PuLP adapter (binaries plus
    continuous slack), HiGHS if present, else CBC. Returns the placements' values, whether a
    time limit stopped a phase, the solver, whether the slack phase was proven optimal, and
    the minimal normalised slack.
    """
    import pulp

    began = time.perf_counter()
    prob = pulp.LpProblem("elastic", pulp.LpMinimize)
    x = [prob.add_variable(f"x{i}", cat=pulp.LpBinary) for i in range(model.num_vars)]
    slack = [prob.add_variable(f"s{g}", lowBound=0) for g in range(len(slacks.names))]
    drop = {k: prob.add_variable(f"d{k}", lowBound=0, upBound=1) for k in drops}
    senses = {"<=": pulp.LpConstraintLE, ">=": pulp.LpConstraintGE, "==": pulp.LpConstraintEQ}
    for k, row in enumerate(model.rows):
        scale = slacks.row_scale.get(k, 1.0)
        terms = [(x[i], c / scale) for i, c in zip(row.vars, row.coefs, strict=True)]
        sign = 1.0 if row.sense == ">=" else -1.0  # loosen: lhs + s >= rhs, lhs - s <= rhs
        for g in slacks.terms.get(k, ()):
            terms.append((slack[g], sign * slacks.scale[g] / scale))
        if k in drop:
            terms.append((drop[k], 1.0))
        prob.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(terms), senses[row.sense],
                                             f"r{k}", row.rhs / scale))
    time_limited = False
    solver_name = ""
    proven = True
    norm = 0.0
    phases = []
    if drop:
        phases.append(("drops", pulp.lpSum(drop.values())))
    if slack:
        phases.append(("slack", pulp.lpSum(slack)))
    for n, (phase, objective) in enumerate(phases):
        prob.setObjective(objective)
        left = max(0.2, time_limit - (time.perf_counter() - began)) / (len(phases) - n)
        limited, solver_name, optimal = _run(prob, left)
        time_limited |= limited
        if phase == "drops" and slack:
            best = sum(v.varValue or 0.0 for v in drop.values())
            prob.addConstraint(pulp.lpSum(drop.values()) <= round(best) + 1e-6, "fewest_drops")
        if phase == "slack":
            proven = optimal and not limited
            norm = math.fsum(v.varValue or 0.0 for v in slack)
    values = [1.0 if (v.varValue or 0.0) > 0.5 else 0.0 for v in x] if phases else \
        [0.0] * model.num_vars
    return values, time_limited, solver_name, proven, norm


def _run(prob: Any, time_limit: float) -> tuple[bool, str, bool]:
    """Solve ``prob`` with HiGHS (through highspy) or CBC; return (time-limited, solver,
    proven optimal: the solver says optimal and, for HiGHS, its dual bound meets the
    objective within 1e-6)."""
    import pulp

    began = time.perf_counter()
    try:
        import highspy  # noqa: F401

        from ...optimizer.backends.mip import _swallow_highs_banner, pulp_highs

        if not pulp.HiGHS(msg=False).available():
            raise ImportError("HiGHS unavailable")
        _swallow_highs_banner()
        solver = pulp_highs(1, msg=False, timeLimit=time_limit, gapRel=1e-9, gapAbs=1e-9)
        prob.solve(solver)
        highs = prob.solverModel
        status = highs.modelStatusToString(highs.getModelStatus())
        info = highs.getInfo()
        value = pulp.value(prob.objective) or 0.0
        bound = getattr(info, "mip_dual_bound", value)
        closed = abs(value - bound) <= 1e-6 * max(1.0, abs(value))
        return "time limit" in status.lower(), "highs", status == "Optimal" and closed
    except ImportError:
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, math.ceil(time_limit)),
                                   gapRel=1e-9, gapAbs=1e-9)
        prob.solve(solver)
        limited = time.perf_counter() - began >= 0.95 * max(1, math.ceil(time_limit))
        return limited, "cbc", pulp.LpStatus[prob.status] == "Optimal" and not limited


def _parse(name: str) -> tuple[str, str]:
    """``cap[id,label]`` -> (id, label) (also ``tranche[id,label]``); ``credits[id]`` and
    ``floor[id]`` -> (id, '')."""
    inner = name[name.index("[") + 1:-1]
    if name.startswith(("credits[", "floor[")):
        return inner, ""
    ident, _, label = inner.rpartition(",")
    return ident, label


def _span(label: str) -> tuple[int, int]:
    first, _, last = label.partition("-")
    return int(first), int(last or first)


def _relax(instance: Instance, el: _Elastic,
           data: dict[str, Any]) -> tuple[list[Relaxation], dict[str, Any]]:
    """Relaxations from the elastic solution, and the relaxed instance data."""
    out, data = _relax_tranches(instance, el, data)
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
        from ...models.rules import cap_use

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

    # Credits (start-ups with tranches: in ``_relax_tranches``) and floors.
    startups = {s.id: k for k, s in enumerate(instance.startups)}
    for k, amount in el.excess.items():
        row = model.rows[k]
        if row.kind not in ("credits", "floor"):
            continue
        sid, _ = _parse(row.name)
        s = instance.startups[startups[sid]]
        if row.kind == "floor":
            assert s.min_share is not None
            asked = instance.asked_value[sid]
            after = max(0.0, math.floor((row.rhs - amount) / asked * 1e9) / 1e9)
            out.append(Relaxation("floor", sid, s.min_share - after, "share", s.min_share,
                                  after))
            data["startups"][startups[sid]]["min_share"] = after
        elif not s.tranches:
            assert s.credits is not None
            out.append(Relaxation("credits", sid, amount, "credits", s.credits,
                                  s.credits + amount))
            data["startups"][startups[sid]]["credits"] = s.credits + amount
    return out, data


def _relax_tranches(instance: Instance, el: _Elastic,
                    data: dict[str, Any]) -> tuple[list[Relaxation], dict[str, Any]]:
    """The tranches to raise (``el.tranches``), applied to ``data`` with the what-if change
    kind ``{kind: tranche, startup, index, set}`` (the start-up's credits follow)."""
    from ...models import InstanceError
    from ...models.rules import tranche_segments
    from ...models.scenarios import apply

    out: list[Relaxation] = []
    changes = []
    for (sid, n), amount in sorted(el.tranches.items()):
        s = instance.startup_by_id[sid]
        before = s.tranches[n].credits
        periods = next(r for k, r in tranche_segments(s, instance.horizon.periods) if k == n)
        out.append(Relaxation("tranche", sid, amount, "credits", before, before + amount,
                              (periods.start, periods.stop - 1), n))
        changes.append({"kind": "tranche", "startup": sid, "index": n, "set": before + amount})
    if changes:
        with suppress(InstanceError, ValueError):  # the relaxed instance check reports it
            data = apply(Instance.model_validate(data), changes).model_dump(by_alias=True)
    return out, data

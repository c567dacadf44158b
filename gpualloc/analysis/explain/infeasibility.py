"""Why an instance is infeasible: the conflicting requirements and the smallest relaxation.

Infeasibility always comes from mandatory jobs (a plan without them satisfies every other
rule), so the explanation names the mandatory jobs (and the jobs they need to run first)
together with the limits they cannot share. It works in two steps:

1. *Windows and dependency chains*, structurally: the earliest end of every required job is
   its release (or the latest earliest end of its dependencies) plus its shortest option that
   some allowed cluster can run. A job whose earliest end is past its deadline has a window
   that is too tight or a dependency chain that is too long (named, e.g. ``a -> b -> c``); the
   relaxation is the smallest later deadline (the earliest end). A required job with no option
   any allowed cluster can run cannot be relaxed this way and is named as such.
2. *Capacity, caps, credits, tranches and floors*, with the elastic model (``elastic.py``) of
   the instance with the deadlines of step 1 relaxed; mandatory jobs it drops are those step 1
   names, or jobs no relaxation lets run (e.g. before a start-up's first tranche).

An instance whose ``min_share`` floors alone cannot hold together (the rest is feasible) is
explained by ``floors.py`` instead: the floors that bind and the smallest uniform lowering.

The relaxation is checked by building the relaxed instance (deadlines moved; pool capacity
raised in exactly the periods that need it, via capacity changes; cap limits raised by the
largest window excess; share fractions raised; credits raised; tranches raised with the what-if
change kind ``tranche``; floors lowered) and solving it with
``optimizer.solve``; ``Explanation.verified`` reports whether that plan is feasible and valid.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import networkx as nx

from ...models import Instance, Job
from ...optimizer.backends import Backend
from ...optimizer.model.formulation import LinearModel, Row
from .chains import _graph, _runnable, _Timing
from .elastic import _Elastic, _elastic, _parse, _relax, _span
from .explanation import Explanation, Relaxation, Requirement, RequirementKind, _num, _ranges
from .floors import _explain_floors
from .minimal import check_below, verify_relaxed


def _explain_infeasible(instance: Instance, engine: Backend, time_limit: float,
                        seed: int) -> Explanation:

    began = time.perf_counter()
    if any(s.min_share for s in instance.startups):
        floors = _explain_floors(instance, engine, time_limit / 2, seed)
        if floors is not None:
            return floors
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
    shifts = _first_tranche_shifts(relaxed, [j for j in elastic.dropped if j not in named],
                                   timing, ex, dependants)
    if shifts:  # jobs that must run before a first tranche: release it earlier, then again
        from ...models.scenarios import apply

        ex.relaxations.extend(shifts)
        relaxed = apply(relaxed, [{"kind": "tranche_shift", "startup": r.target, "index": 0,
                                   "by": -int(r.amount)} for r in shifts])
        data = relaxed.model_dump(by_alias=True)
        elastic = _elastic(relaxed, remaining)
    ex.time_limited = elastic.time_limited
    if elastic.time_limited:
        ex.notes.append("the elastic model hit its time limit: the relaxation may not be "
                        "the smallest")
    elif not elastic.proven:
        ex.notes.append(f"{elastic.solver} did not prove the elastic model optimal: the "
                        "relaxation may not be the smallest")
    relaxations, data = _relax(relaxed, elastic, data)
    ex.relaxations.extend(relaxations)
    ex.conflicts.extend(_conflicts(relaxed, elastic, dependants, named))
    stuck = [j for j in elastic.dropped if j not in named]
    if stuck:
        unfixable = True
        ex.conflicts.extend(_stuck(relaxed, stuck, dependants))
    if not ex.conflicts and not ex.relaxations:
        ex.notes.append("no conflict found: the elastic model is feasible without relaxing "
                        "anything")

    # Check: the relaxed instance must be feasible.
    if unfixable:
        ex.verified = False
        ex.verification = ("not checked: some required job cannot run under any relaxation "
                           "of deadlines, capacity, caps, credits, tranches or floors")
        return ex
    remaining = max(1.0, time_limit - (time.perf_counter() - began))
    if verify_relaxed(ex, data, engine, remaining, seed):
        remaining = max(1.0, time_limit - (time.perf_counter() - began))  # at least 1 s
        below, findings = check_below(relaxed, data, ex.relaxations, engine, remaining, seed)
        ex.minimal = below and elastic.proven and not elastic.time_limited
        ex.minimality = "; ".join(findings)
    return ex


def _order(instance: Instance) -> Callable[[str], int]:
    index = {j.id: k for k, j in enumerate(instance.jobs)}
    return lambda jid: index.get(jid, 0)


def _role(jid: str, job: Job, dependants: dict[str, list[str]]) -> str:
    if job.mandatory:
        return f"mandatory job {jid}"
    who = ", ".join(sorted(dependants.get(jid, [])))
    return f"job {jid} (must run: mandatory {who} comes after it)"


def _first_tranche_shifts(instance: Instance, stuck: list[str], timing: _Timing,
                          ex: Explanation, dependants: dict[str, list[str]]) -> list[Relaxation]:
    """When every job the elastic model leaves out must run before its start-up's first
    tranche: that tranche released just early enough (``from`` the latest start of the
    job's shortest runnable option), named in ``ex.conflicts``; else nothing."""
    latest: dict[str, int] = {}
    for jid in stuck:
        job = instance.job_by_id[jid]
        s = instance.startup_by_id[job.startup]
        usable = timing.usable.get(jid)
        if not s.tranches or not usable:
            return []
        start = instance.deadline(job) - min(usable.values())
        if start >= s.tranches[0].from_ or start < job.release:
            return []
        latest[s.id] = min(latest.get(s.id, start), start)
    out = []
    for sid, start in latest.items():
        first = instance.startup_by_id[sid].tranches[0].from_
        jobs = [j for j in stuck if instance.job_by_id[j].startup == sid]
        ex.conflicts.append(Requirement("tranche", f"tranche[{sid},0-{first - 1}]",
                                        f"start-up {sid} has no credits before its first "
                                        f"tranche (from {first})"))
        for j in jobs:
            job = instance.job_by_id[j]
            by = instance.deadline(job) - min(timing.usable[j].values())
            ex.conflicts.append(Requirement(
                "mandatory" if job.mandatory else "dependency", j,
                f"{_role(j, job, dependants)} must start by period {by} to end by its "
                f"deadline {instance.deadline(job)}"))
        out.append(Relaxation("tranche_shift", sid, float(first - start), "periods",
                              float(first), float(start), None, 0))
    return out


def _stuck(instance: Instance, jobs: list[str],
           dependants: dict[str, list[str]]) -> list[Requirement]:
    """Required jobs the elastic model leaves out: no relaxation it knows lets them run."""
    out = []
    for jid in jobs:
        job = instance.job_by_id[jid]
        s = instance.startup_by_id[job.startup]
        detail = (f"{_role(jid, job, dependants)} cannot run under any relaxation of "
                  "capacity, caps, credits, tranches or floors")
        first = s.tranches[0].from_ if s.tranches else 0
        shortest = min((o.periods for o in job.options), default=0)
        if first > 0 and instance.deadline(job) - shortest < first:
            detail += (f": it must run before period {first}, and start-up {s.id} has no "
                       f"credits before its first tranche (from {first})")
        out.append(Requirement("mandatory" if job.mandatory else "dependency", jid, detail))
    return out


def _startup_limit(instance: Instance, row: Row) -> Requirement:
    """A start-up's credits, credit window (tranches) or floor as a conflicting requirement."""
    ident, label = _parse(row.name)
    s = instance.startup_by_id[ident]
    if row.kind == "floor":
        return Requirement("floor", row.name, f"start-up {ident} must reach min_share "
                           f"{_num(s.min_share)} (value {_num(row.rhs)} of its asked "
                           f"{_num(instance.asked_value[ident])})")
    if row.kind == "credits" and not s.tranches:
        return Requirement("credits", row.name, f"start-up {ident} holds "
                           f"{_num(s.credits)} credits")
    if row.kind == "credits":
        return Requirement("credits", row.name, f"start-up {ident} holds {_num(s.credits)} "
                           f"credits in {len(s.tranches)} tranches")
    first, last = _span(label)
    if s.carry_over:
        what = (f"its spend in periods {first}-{last} is at most the {_num(row.rhs)} credits "
                f"released by period {last}")
    else:
        n = next((k for k, t in enumerate(s.tranches) if t.from_ == first), None)
        what = (f"spends nothing before its first tranche (periods {first}-{last})"
                if n is None else f"its spend in periods {first}-{last} is at most "
                f"tranche {n}'s {_num(row.rhs)} credits (no carry-over)")
    return Requirement("tranche", row.name, f"start-up {ident}: {what}")


def _unavoidable(model: LinearModel, touching: set[int]) -> set[str]:
    """Jobs every placement of which uses one of the relaxed limits (no way around them)."""
    avoids: set[str] = set()
    seen: set[str] = set()
    for v, p in enumerate(model.placements):
        seen.add(p.job)
        if v not in touching:
            avoids.add(p.job)
    return seen - avoids


def _conflicts(instance: Instance, el: _Elastic, dependants: dict[str, list[str]],
               named: set[str]) -> list[Requirement]:
    """The relaxed limits, and the required jobs that cannot avoid them: a job with a
    placement outside every relaxed limit (e.g. an unrestricted option) is not part of the
    conflict."""
    out: list[Requirement] = []
    model = el.model
    seen: set[str] = set()
    touching = {v for k in el.excess if model.rows[k].kind != "floor"
                for v, c in zip(model.rows[k].vars, model.rows[k].coefs, strict=True) if c > 0}
    jobs = _unavoidable(model, touching)
    for k in sorted(el.excess):
        row = model.rows[k]
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
        if row.kind in ("credits", "tranche", "floor"):
            out.append(_startup_limit(instance, row))
            continue
        cap = next(c for c in instance.caps if c.id == ident)
        key = f"{'share' if row.name.startswith('share[') else 'cap'}[{ident}]"
        if key in seen:
            continue
        seen.add(key)
        if key.startswith("share"):
            out.append(Requirement("share", key, f"cap {ident}: {cap.metric} at most "
                                   f"{_num(cap.fraction)} of its share_of scope per {cap.per}"))
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

"""Proof that a relaxation is minimal: feasible at the relaxed values, infeasible just below.

``elastic.py`` finds the relaxation of least normalised size (the sum, over the limits it
raises, of the amount added divided by the limit) with an exact MIP solved to proven
optimality. This module checks the result from outside: for every relaxation it builds the
relaxed instance with that one amount lowered by one step (everything else kept relaxed) and
solves it; each such instance must be proven infeasible. A step is one period for a deadline
and ``max(1, ceil(1e-5 x the relaxed value))`` units for GPUs, TPP, GPU-hours and credits (more than
the validator's 1e-6 tolerance), 1e-4 for a share fraction or a ``min_share`` (a floor is relaxed
by lowering it, so its check raises it back). A tranche is lowered, like it was raised, with the
what-if change kind ``{kind: tranche, startup, index, set}`` (the start-up's credits follow).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from ...models import Instance, InstanceError, SolveStatus
from ...optimizer.backends import Backend
from .explanation import Explanation, Relaxation, _num

MAX_CHECKS = 12


def step(r: Relaxation) -> float:
    """How far below the relaxed value the check goes."""
    if r.kind in ("deadline", "tranche_shift"):
        return 1.0
    if r.kind in ("share", "floor"):
        return 1e-4
    return float(max(1, math.ceil(1e-5 * abs(r.after or 0.0))))


def lowered(instance: Instance, data: dict[str, Any], r: Relaxation) -> dict[str, Any] | None:
    """``data`` (the relaxed instance) with ``r``'s amount lowered by one ``step`` (a floor:
    raised back by one step); None when the relaxation has no value just below (a share
    limit removed). A tranche is lowered with the what-if change kind ``tranche``."""
    out = copy.deepcopy(data)
    d = step(r)
    if r.kind == "deadline":
        job = next(j for j in out["jobs"] if j["id"] == r.target)
        job["deadline"] = int((r.after or 0) - d)
    elif r.kind == "capacity":
        cid, _, acc = r.target.partition("/")
        cluster = next(c for c in out["clusters"] if c["id"] == cid)
        pd = next(p for p in cluster["pools"] if p["accelerator"] == acc)
        first, last = r.periods or (0, instance.horizon.periods - 1)
        gpus = _per_period(pd, instance.horizon.periods)
        for t in range(first, last + 1):
            gpus[t] = max(0, gpus[t] - int(d))
        pd["gpus"] = gpus[0]
        pd["capacity"] = [{"from": t, "gpus": gpus[t]} for t in range(1, len(gpus))
                          if gpus[t] != gpus[t - 1]]
    elif r.kind == "cap":
        cap = next(c for c in out["caps"] if c["id"] == r.target)
        cap["limit"] = (r.after or 0.0) - d
    elif r.kind == "share":
        if r.after is None:
            return None
        cap = next(c for c in out["caps"] if c["id"] == r.target)
        cap["fraction"] = max(0.0, r.after - d)
    elif r.kind == "floor":
        s = next(s for s in out["startups"] if s["id"] == r.target)
        s["min_share"] = min(r.before or 0.0, (r.after or 0.0) + d)
    elif r.kind == "tranche_shift":
        from ...models.scenarios import apply

        change = {"kind": "tranche_shift", "startup": r.target, "index": r.index or 0, "by": 1}
        out = apply(Instance.model_validate(out), [change]).model_dump(by_alias=True)
    elif r.kind == "tranche":
        from ...models.scenarios import apply

        change = {"kind": "tranche", "startup": r.target, "index": r.index or 0,
                  "set": max(0.0, (r.after or 0.0) - d)}
        out = apply(Instance.model_validate(out), [change]).model_dump(by_alias=True)
    else:
        s = next(s for s in out["startups"] if s["id"] == r.target)
        if s.get("tranches"):
            return None
        s["credits"] = (r.after or 0.0) - d
    return out


def _per_period(pd: dict[str, Any], periods: int) -> list[int]:
    gpus = [int(pd["gpus"])] * periods
    for ch in sorted(pd.get("capacity") or [], key=lambda c: c["from"]):
        for t in range(int(ch["from"]), periods):
            gpus[t] = int(ch["gpus"])
    return gpus


def check_below(instance: Instance, data: dict[str, Any], relaxations: list[Relaxation],
                engine: Backend, time_limit: float, seed: int) -> tuple[bool, list[str]]:
    """Solve the instance just below each relaxation; (all proven infeasible, findings)."""
    from ...optimizer.solve import solve

    began = time.perf_counter()
    findings: list[str] = []
    ok = True
    todo = relaxations[:MAX_CHECKS]
    if len(relaxations) > MAX_CHECKS:
        ok = False
        findings.append(f"only the first {MAX_CHECKS} of {len(relaxations)} relaxations "
                        "were checked just below")
    for n, r in enumerate(todo):
        try:
            below = lowered(instance, data, r)
        except (InstanceError, ValueError) as e:  # reported, never raised
            ok = False
            findings.append(f"{r.kind} {r.target}: could not build the instance below: {e}")
            continue
        if below is None:
            ok = False
            findings.append(f"{r.kind} {r.target}: no value just below to check")
            continue
        value = (r.after or 0.0) + (step(r) if r.kind in ("floor", "tranche_shift")
                                       else -step(r))
        try:
            low = Instance.model_validate(below)
        except (InstanceError, ValueError) as e:  # reported, never raised
            ok = False
            findings.append(f"{r.kind} {r.target}: could not build the instance below: {e}")
            continue
        remaining = time_limit - (time.perf_counter() - began)
        if remaining < 0.2:  # the time limit holds: the rest stays unchecked
            ok = False
            findings.append(f"{len(todo) - n} relaxation(s) not checked just below: out of time")
            break
        plan = solve(low, engine, time_limit=remaining / (len(todo) - n), seed=seed)
        if plan.status == SolveStatus.INFEASIBLE:
            findings.append(f"{_at(r, value)} (just below): infeasible")
        else:
            ok = False
            findings.append(f"{_at(r, value)} (just below): "
                            f"{plan.status.value}, not proven infeasible")
    return ok, findings


def _at(r: Relaxation, value: float) -> str:
    """``r``'s subject at ``value``: ``tranche 0 of moonshot at 159``."""
    if r.kind == "tranche_shift":
        return f"tranche {r.index} of {r.target} from period {_num(value)}"
    what = {"tranche": f"tranche {r.index} of {r.target}",
            "floor": f"min_share of {r.target}"}.get(r.kind, f"{r.kind} {r.target}")
    return f"{what} at {_num(value)}"


def verify_relaxed(ex: Explanation, data: dict[str, Any], engine: Backend, time_limit: float,
                   seed: int) -> bool:
    """Build the relaxed instance from ``data`` and solve it: ``ex.relaxed_instance``,
    ``ex.verified`` and ``ex.verification`` say how it went; True when its plan is feasible and
    passes the validator (the one check explain makes of every relaxation it suggests)."""
    from ...models.validator import validate
    from ...optimizer.solve import solve

    try:
        final = Instance.model_validate(data)
    except (InstanceError, ValueError) as e:  # reported, never raised
        ex.verified = False
        ex.verification = f"could not build the relaxed instance: {e}"
        return False
    ex.relaxed_instance = final
    check = solve(final, engine, time_limit=time_limit, seed=seed)
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
    return ex.verified

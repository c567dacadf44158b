"""Properties of every backend on random small instances that use every feature.

- every plan any backend returns passes the independent validator (``check_plan``);
- an ``optimal`` claim is never beaten by another backend's plan, and an ``infeasible`` claim
  is never contradicted by one;
- loosening a constraint (more GPUs in a pool, more credits, a higher cap limit, a later
  deadline) never lowers the optimum, and every plan of the original instance stays valid;
- adding a job never lowers the optimum, and the old plan stays valid (with the new job
  unscheduled).

Optimum comparisons are made only when both solves are proven optimal; the instances come from
``tests.strategies.random_instance`` (seeded), with hypothesis choosing seeds and sizes.
"""

from __future__ import annotations

import copy
import json
import os
import random
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance, Plan, SolveStatus
from gpualloc.models.instance import MAX_GPUS
from gpualloc.models.validator import validate
from tests.conftest import ALL_BACKENDS, EXACT_BACKENDS, REL_TOL, solve_checked
from tests.strategies import random_instance

TIME_LIMIT = 10.0  # the instances solve in well under a second; this only bounds a bad case
# examples per property; raise it for a longer hunt: GPUALLOC_PROPERTY_EXAMPLES=2000 pytest ...
EXAMPLES = int(os.environ.get("GPUALLOC_PROPERTY_EXAMPLES", "100"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

seeds = st.integers(min_value=0, max_value=2**31 - 1)
sizes = st.fixed_dictionaries({
    "jobs": st.integers(3, 10),
    "periods": st.integers(2, 7),
    "caps": st.integers(0, 3),
    "clusters": st.integers(1, 3),
    "startups": st.integers(1, 3),
})


def tol(x: float) -> float:
    return REL_TOL * max(1.0, abs(x))


def make(seed: int, size: dict[str, int]) -> Instance:
    return random_instance(seed, **size)


def document(instance: Instance) -> dict[str, Any]:
    """The instance as a plain mapping (what a user writes), to edit and validate again."""
    return json.loads(json.dumps(instance.model_dump(mode="json", by_alias=True,
                                                     exclude_none=True)))


def is_optimal(plan: Plan) -> bool:
    return plan.status == SolveStatus.OPTIMAL


# -- 1. every backend: valid plans; claims never contradicted ----------------------------------
@PROPERTY
@given(seed=seeds, size=sizes, mandatory=st.lists(st.integers(0, 99), max_size=3))
def test_plans_are_valid_and_claims_are_never_contradicted(seed: int, size: dict[str, int],
                                                           mandatory: list[int]) -> None:
    instance = make(seed, size)
    if mandatory:  # more mandatory jobs: some instances become infeasible
        doc = document(instance)
        for k in mandatory:
            doc["jobs"][k % len(doc["jobs"])]["mandatory"] = True
        instance = Instance.model_validate(doc)
    plans = {b: solve_checked(instance, b, time_limit=TIME_LIMIT) for b in ALL_BACKENDS}
    found = {b: p for b, p in plans.items() if p.objective is not None}
    for b in EXACT_BACKENDS:
        claim = plans[b]
        event(f"{b}: {claim.status.value}")
        if is_optimal(claim):
            for other, plan in found.items():
                assert plan.objective <= claim.objective + tol(claim.objective), (
                    f"{other} found {plan.objective}, above {b}'s 'optimal' {claim.objective}")
        if claim.status == SolveStatus.INFEASIBLE:
            assert not found, f"{b} claims infeasible, but {sorted(found)} found plans"
        if found:  # a plan exists: no exact backend may come back empty-handed
            assert claim.objective is not None, f"{b}: {claim.status.value}, others found plans"


# -- 2. loosening a constraint never lowers the optimum ----------------------------------------
def loosen(doc: dict[str, Any], kind: str, rng: random.Random) -> str | None:
    """Loosen one constraint of ``doc`` in place; returns what changed (None: nothing to do)."""
    if kind == "pool":
        pools = [(c, p) for c in doc["clusters"] for p in c.get("pools", [])]
        if not pools:
            return None
        cluster, pool = rng.choice(pools)
        extra = rng.choice((1, 4, 8, 16))
        pool["gpus"] = min(MAX_GPUS, pool["gpus"] + extra)
        for change in pool.get("capacity", []):
            change["gpus"] = min(MAX_GPUS, change["gpus"] + extra)
        if "max_gpus_per_job" in pool and rng.random() < 0.5:
            del pool["max_gpus_per_job"]
        return f"pool {cluster['id']}/{pool['accelerator']} +{extra} GPUs"
    if kind == "credits":
        limited = [s for s in doc["startups"] if s.get("credits") is not None]
        if not limited:
            return None
        startup = rng.choice(limited)
        if rng.random() < 0.3:
            del startup["credits"]  # unlimited
        else:
            startup["credits"] = startup["credits"] * rng.choice((1.1, 1.5, 3.0)) + 1
        return f"credits of {startup['id']}"
    if kind == "cap":
        caps = doc.get("caps", [])
        if not caps:
            return None
        cap = rng.choice(caps)
        if cap.get("limit") is not None and (cap.get("fraction") is None or rng.random() < 0.5):
            cap["limit"] = cap["limit"] * rng.choice((1.1, 1.5, 3.0)) + 1
        else:
            cap["fraction"] = min(1.0, cap["fraction"] + 0.25)
        return f"cap {cap['id']}"
    assert kind == "deadline"
    periods = doc["horizon"]["periods"]
    tight = [j for j in doc["jobs"] if j.get("deadline") is not None and j["deadline"] < periods]
    if not tight:
        return None
    job = rng.choice(tight)
    if rng.random() < 0.3:
        del job["deadline"]  # the horizon's end
    else:
        job["deadline"] = rng.randint(job["deadline"] + 1, periods)
    return f"deadline of {job['id']}"


@PROPERTY
@given(seed=seeds, size=sizes, kind=st.sampled_from(("pool", "credits", "cap", "deadline")),
       backend=st.sampled_from(EXACT_BACKENDS), pick=st.integers(0, 2**31 - 1))
def test_loosening_a_constraint_never_lowers_the_optimum(seed: int, size: dict[str, int],
                                                         kind: str, backend: str,
                                                         pick: int) -> None:
    base = make(seed, size)
    doc = document(base)
    what = loosen(doc, kind, random.Random(pick))
    assume(what is not None)
    loose = Instance.model_validate(doc)
    before = solve_checked(base, backend, time_limit=TIME_LIMIT)
    if before.objective is not None:  # the feasible set only grew: the old plan still holds
        assert validate(loose, before) == [], what
    after = solve_checked(loose, backend, time_limit=TIME_LIMIT)
    if before.objective is not None:
        assert after.objective is not None, f"{what}: no plan after loosening"
    if is_optimal(before) and is_optimal(after):
        event(f"{kind}: compared")
        assert after.objective >= before.objective - tol(before.objective), (
            f"{backend}: {what} lowered the optimum {before.objective} -> {after.objective}")


# -- 3. adding a job never lowers the optimum --------------------------------------------------
def add_job(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A new optional job on accelerators of the instance's pools (sometimes after another)."""
    periods = doc["horizon"]["periods"]
    accs = sorted({p["accelerator"] for c in doc["clusters"] for p in c.get("pools", [])})
    options = [{"accelerator": rng.choice(accs), "gpus": rng.choice((1, 2, 4, 8)),
                "periods": rng.randint(1, min(3, periods))}
               for _ in range(rng.randint(1, 2))]
    job: dict[str, Any] = {"id": "added-job", "startup": rng.choice(doc["startups"])["id"],
                           "value": rng.randint(1, 40), "options": options}
    if rng.random() < 0.3:
        shortest = min(o["periods"] for o in options)
        job["release"] = rng.randint(0, periods - shortest)
        job["deadline"] = rng.randint(job["release"] + shortest, periods)
    if rng.random() < 0.3 and doc["jobs"]:
        job["after"] = [rng.choice(doc["jobs"])["id"]]
    if rng.random() < 0.2:
        job["regions"] = [rng.choice(doc["clusters"])["region"]]
    return job


@PROPERTY
@given(seed=seeds, size=sizes, backend=st.sampled_from(EXACT_BACKENDS),
       pick=st.integers(0, 2**31 - 1))
def test_adding_a_job_never_lowers_the_optimum(seed: int, size: dict[str, int], backend: str,
                                               pick: int) -> None:
    base = make(seed, size)
    doc = copy.deepcopy(document(base))
    job = add_job(doc, random.Random(pick))
    doc["jobs"].append(job)
    bigger = Instance.model_validate(doc)
    before = solve_checked(base, backend, time_limit=TIME_LIMIT)
    if before.objective is not None:
        old = before.model_copy(update={"unscheduled": (*before.unscheduled, job["id"])})
        assert validate(bigger, old) == []
    after = solve_checked(bigger, backend, time_limit=TIME_LIMIT)
    if is_optimal(before) and is_optimal(after):
        event("compared")
        assert after.objective >= before.objective - tol(before.objective), (
            f"{backend}: adding {job} lowered the optimum {before.objective} -> "
            f"{after.objective}")

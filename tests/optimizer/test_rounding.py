"""The roundings of the pool capacity rows: valid for every plan, tighter for the LP."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gpualloc.models import Instance
from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from gpualloc.optimizer.model import rounding
from gpualloc.optimizer.model.formulation import build
from gpualloc.optimizer.model.linear import LinearModel, Placement, Row
from gpualloc.optimizer.strategies.lp import lp_relaxation


def _pool_instance(gpus: int, sizes: list[int]) -> Instance:
    return Instance.model_validate({
        "name": "rounding", "horizon": {"periods": 2},
        "clusters": [{"id": "c", "region": "r", "country": "US",
                      "pools": [{"accelerator": "H100", "gpus": gpus,
                                 "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "s"}],
        "jobs": [{"id": f"j{k}", "startup": "s", "value": 1.0 + 0.01 * k,
                  "options": [{"accelerator": "H100", "gpus": g, "periods": 2}]}
                 for k, g in enumerate(sizes)]})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 16)), min_size=1, max_size=9),
       st.integers(1, 40))
def test_every_rounding_holds_for_every_plan_that_meets_its_row(items, rhs) -> None:
    model = LinearModel()
    for k, (job, g) in enumerate(items):
        model.placements.append(Placement(f"j{job}", 0, "c", "H100", g, k, 1, 0.0, 1.0))
        model.by_job.setdefault(f"j{job}", []).append(k)
    model.objective = [1.0] * len(items)
    model.rows.append(Row("capacity", "capacity[c,H100,0]", list(range(len(items))),
                          [float(g) for _, g in items], "<=", float(rhs), ("c", "H100", 0)))
    cuts = rounding.rounding_rows(model)
    for x in itertools.product((0, 1), repeat=len(items)):
        jobs = [items[i][0] for i in range(len(items)) if x[i]]
        used = sum(g for (_, g), v in zip(items, x, strict=True) if v)
        if len(set(jobs)) < len(jobs) or used > rhs:
            continue  # not a plan: two placements of a job, or over the pool
        for cut in cuts:
            lhs = sum(c * x[v] for v, c in zip(cut.vars, cut.coefs, strict=True))
            assert lhs <= cut.rhs + 1e-9, (cut, x)


def test_a_small_pool_gets_roundings_that_tighten_the_lp_but_not_the_optimum() -> None:
    inst = _pool_instance(15, [8, 8, 8])  # the LP runs 15/8 of the jobs at once, a plan one
    plain, rounded = build(inst, roundings=False), build(inst)
    assert not any(r.kind == "rounding" for r in plain.rows)
    assert any(r.kind == "rounding" for r in rounded.rows)
    assert lp_relaxation(plain).bound > 1.8
    assert lp_relaxation(rounded).bound < 1.03
    plan = solve(inst, backend="cpsat", time_limit=20, workers=1)
    assert plan.status == "optimal" and validate(inst, plan) == []
    assert abs(plan.objective - 1.02) < 1e-6  # the most valuable job alone


def test_big_pools_and_dividing_sizes_get_none() -> None:
    big = build(_pool_instance(rounding.SMALL_POOL + 8, [8] * 12))  # 72 GPUs: too big
    divides = build(_pool_instance(16, [8, 8, 8, 4]))  # 16 = 2 x 8 = 4 x 4: nothing to cut
    assert not any(r.kind == "rounding" for m in (big, divides) for r in m.rows)

"""The neutral linear model: its size, its placements, eligibility, and exact rows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from gpualloc.models import Assignment, Instance
from gpualloc.optimizer import build as _build
from tests.conftest import assert_optimum, solve_checked
from tests.strategies import instances


def build(instance, stop=None):
    """The rules' rows as written: no presolve (that has its own tests, test_presolve)."""
    return _build(instance, stop, presolve=False)


H100_TPP = 15832


def _instance(jobs: list[dict[str, Any]], **extra: Any) -> Instance:
    data: dict[str, Any] = {
        "name": "f", "horizon": {"periods": 3, "period_hours": 1.0},
        "clusters": [
            {"id": "c1", "region": "r1", "country": "US", "pools": [
                {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1.0}]},
            {"id": "c2", "region": "r2", "country": "US", "pools": [
                {"accelerator": "H100", "gpus": 4, "price_per_gpu_hour": 1.0}]},
        ],
        "startups": [{"id": "s"}],
        "jobs": jobs,
    }
    data.update(extra)
    return Instance.model_validate(data)


def _job(ident: str, value: float, gpus: int, periods: int, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "startup": "s", "value": value,
            "options": [{"accelerator": "H100", "gpus": gpus, "periods": periods}], **extra}


# -- size -------------------------------------------------------------------------------------
SIZE_JOBS = [
    _job("a", 5, 8, 2),                                # c1: starts 0, 1; c2 (4 GPUs): never fits
    _job("b", 3, 4, 1, release=1),                     # c1 and c2: starts 1, 2
    _job("c", 2, 4, 1, clusters=["c2"], after=["a"]),  # c2: starts 0, 1, 2
]


@pytest.mark.parametrize(("credits", "expected"), [
    # Variables: a 2 + b 4 + c 3 = 9.
    # Rows (nonzeros):
    #  assignment: a (2), b (4), c (3)                                       3 rows,  9 nz
    #  capacity, only where more than one job could exceed the pool:
    #    c1 t0: a@0 = 8 <= 8 -> implied, dropped
    #    c1 t1: a@0, a@1, b@1 (20 > 8) (3); c1 t2: a@1, b@2 (12 > 8) (2)
    #    c2 t0: c@0 = 4 <= 4 -> dropped
    #    c2 t1: b@1, c@1 (2); c2 t2: b@2, c@2 (2)                          4 rows,  9 nz
    #  precedence c after a, one row per start t of c: c starting by t needs a ended by t:
    #    t0: c@0 (1); t1: c@0, c@1 (2); t2: c@0..2 and a@0 (ends 2) (4)     3 rows,  7 nz
    #  credits: at most a 16 + b 4 + c 4 = 24 credits could be spent:
    #    credits 20 -> one row over all 9 vars; credits 24 -> implied, dropped
    (20.0, {"variables": 9, "constraints": 11, "nonzeros": 34}),
    (24.0, {"variables": 9, "constraints": 10, "nonzeros": 25}),
])
def test_model_size(credits: float, expected: dict[str, int]) -> None:
    inst = _instance(SIZE_JOBS, startups=[{"id": "s", "credits": credits}])
    model = build(inst)
    assert model.size() == expected
    kinds: dict[str, int] = {}
    for row in model.rows:
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
    assert kinds == {"assign": 3, "capacity": 4, "precedence": 3,
                     **({"credits": 1} if credits < 24 else {})}
    assert len(model.objective) == model.num_vars == len(model.placements)
    assert {j: len(v) for j, v in model.by_job.items()} == {"a": 2, "b": 4, "c": 3}


def test_model_size_counts_cap_rows() -> None:
    # Two jobs of 8 GPUs x 1 period in c1 (one H100 pool of 8, 3 periods: 3 starts each,
    # 6 vars). A cap of 8 GPUs per period: each period has 2 vars using 16 > 8 -> 3 rows of
    # 2. The capacity rows say the same thing (3 rows of 2); assignment rows 2 of 3.
    jobs = [_job("a", 1, 8, 1, clusters=["c1"]), _job("b", 1, 8, 1, clusters=["c1"])]
    cap = {"id": "k", "metric": "gpus", "per": "period", "limit": 8}
    model = build(_instance(jobs, caps=[cap]))
    assert model.size() == {"variables": 6, "constraints": 8, "nonzeros": 18}
    assert sum(r.kind == "cap" for r in model.rows) == 3
    # A limit of 16 is never exceeded: no cap rows at all.
    model = build(_instance(jobs, caps=[{**cap, "limit": 16}]))
    assert sum(r.kind == "cap" for r in model.rows) == 0


# -- placements -------------------------------------------------------------------------------
def test_placements_only_inside_window_and_allowed_clusters() -> None:
    # Horizon 6. c1 (r1), c2 (r2), c3 (r1), each with an 8-GPU H100 pool; c3 also has H20.
    # Job j: release 1, deadline 5, clusters [c1, c2], start-up regions [r1] -> only c1.
    # Option 0: 4 H100 x 2 periods -> starts 1, 2, 3 (3 + 2 = 5 <= 5); option 1: H20, which
    # c1 lacks -> none. Expected placements: option 0 on c1 at 1, 2, 3.
    def pool(acc: str) -> dict[str, Any]:
        return {"accelerator": acc, "gpus": 8, "price_per_gpu_hour": 1.0}

    inst = Instance.model_validate({
        "name": "w", "horizon": {"periods": 6},
        "clusters": [
            {"id": "c1", "region": "r1", "country": "US", "pools": [pool("H100")]},
            {"id": "c2", "region": "r2", "country": "US", "pools": [pool("H100")]},
            {"id": "c3", "region": "r1", "country": "US", "pools": [pool("H100"), pool("H20")]},
        ],
        "startups": [{"id": "s", "regions": ["r1"]}],
        "jobs": [{"id": "j", "startup": "s", "value": 1, "release": 1, "deadline": 5,
                  "clusters": ["c1", "c2"],
                  "options": [{"accelerator": "H100", "gpus": 4, "periods": 2},
                              {"accelerator": "H20", "gpus": 4, "periods": 1}]}],
    })
    model = build(inst)
    got = {(p.job, p.option, p.cluster, p.start, p.end) for p in model.placements}
    assert got == {("j", 0, "c1", 1, 3), ("j", 0, "c1", 2, 4), ("j", 0, "c1", 3, 5)}


def _expected_placements(inst: Instance) -> set[tuple[str, int, str, int]]:
    """Every (job, option, cluster, start) that rules 2 and 3 and eligibility allow and that
    fits the pool's capacity in each period it runs, written from DESIGN.md directly."""
    out = set()
    for job in inst.jobs:
        deadline = inst.horizon.periods if job.deadline is None else job.deadline
        startup = inst.startup_by_id[job.startup]
        for k, option in enumerate(job.options):
            for cluster in inst.clusters:
                if job.clusters is not None and cluster.id not in job.clusters:
                    continue
                if job.regions is not None and cluster.region not in job.regions:
                    continue
                if startup.regions is not None and cluster.region not in startup.regions:
                    continue
                pool = cluster.pool(option.accelerator)
                if pool is None:
                    continue
                if pool.max_gpus_per_job is not None and option.gpus > pool.max_gpus_per_job:
                    continue
                if inst.ineligibility(job, option.accelerator, cluster) is not None:
                    continue
                for start in range(job.release, deadline - option.periods + 1):
                    if all(pool.gpus_at(t) >= option.gpus
                           for t in range(start, start + option.periods)):
                        out.add((job.id, k, cluster.id, start))
    return out


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(instances())
def test_placements_are_exactly_the_allowed_ones(inst: Instance) -> None:
    model = build(inst)
    got = [(p.job, p.option, p.cluster, p.start) for p in model.placements]
    assert len(got) == len(set(got))  # no duplicate variables
    assert set(got) == _expected_placements(inst)
    for p in model.placements:
        job = inst.job_by_id[p.job]
        option = job.options[p.option]
        assert (p.accelerator, p.gpus, p.periods) == (option.accelerator, option.gpus,
                                                      option.periods)
        assert job.release <= p.start and p.end <= inst.deadline(job)
        assert p.value == job.option_value(option)
        assert p.cost == pytest.approx(
            option.gpus * option.periods * inst.horizon.period_hours
            * inst.cluster_by_id[p.cluster].pool(p.accelerator).price_per_gpu_hour)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(instances())
def test_objective_coefficients(inst: Instance) -> None:
    # maximize sum(weight * value) - cost_weight * sum(cost), one coefficient per placement
    model = build(inst)
    cw = inst.objective.cost_weight
    for p, c in zip(model.placements, model.objective, strict=True):
        weight = inst.startup_by_id[inst.job_by_id[p.job].startup].weight
        assert c == pytest.approx(weight * p.value - cw * p.cost, rel=1e-12, abs=1e-12)


# -- eligibility ------------------------------------------------------------------------------
def test_ineligible_options_are_listed_in_model_and_plan(backend: str) -> None:
    # cn1 (CN) and us1 (US), each with H100 (3A090.a) and H20 (unrestricted) pools.
    # Start-up r is restricted from 3A090.a; start-up h is headquartered in CN, and a rule bars
    # CN-headquartered start-ups from 3A090.a in CN.
    # Job x (r): option 0 H100 -> barred on cn1 and us1; option 1 H20 -> allowed.
    # Job y (h): option 0 H100 -> barred on cn1 only.
    # Ineligible: (x, 0, cn1), (x, 0, us1), (y, 0, cn1). The optimum runs x on H20 (2) and y
    # on H100 in us1 (3) -> 5.
    def pool(acc: str) -> dict[str, Any]:
        return {"accelerator": acc, "gpus": 8, "price_per_gpu_hour": 1.0}

    inst = Instance.model_validate({
        "name": "e", "horizon": {"periods": 1},
        "clusters": [
            {"id": "cn1", "region": "cn-east", "country": "CN",
             "pools": [pool("H100"), pool("H20")]},
            {"id": "us1", "region": "us-west", "country": "US",
             "pools": [pool("H100"), pool("H20")]},
        ],
        "startups": [{"id": "r", "restricted": ["3A090.a"]},
                     {"id": "h", "headquarters": "CN"}],
        "jobs": [
            {"id": "x", "startup": "r", "value": 2,
             "options": [{"accelerator": "H100", "gpus": 8, "periods": 1},
                         {"accelerator": "H20", "gpus": 8, "periods": 1}]},
            {"id": "y", "startup": "h", "value": 3,
             "options": [{"accelerator": "H100", "gpus": 8, "periods": 1}]},
        ],
        "eligibility": [{"id": "cn-hq", "export_classes": ["3A090.a"], "countries": ["CN"],
                         "headquarters": ["CN"]}],
    })
    expected = {("x", 0, "cn1"), ("x", 0, "us1"), ("y", 0, "cn1")}
    model = build(inst)
    assert {(i.job, i.option, i.cluster) for i in model.ineligible} == expected
    assert all(i.reason for i in model.ineligible)
    assert not any((p.job, p.option, p.cluster) in expected for p in model.placements)
    reasons = {(i.job, i.cluster): i.reason for i in model.ineligible}
    assert "cn-hq" in reasons[("y", "cn1")]

    plan = solve_checked(inst, backend)
    assert {(i.job, i.option, i.cluster) for i in plan.ineligible} == expected
    assert_optimum(plan, 5.0, backend)


# -- precedence ---------------------------------------------------------------------------------
def _precedence_instance(**d_extra: Any) -> Instance:
    # Horizon 4, one 16-GPU pool (capacity never binds). P: 4 GPUs x 2 periods worth 1 (starts
    # 0, 1, 2); D after P: 4 GPUs x 1 period worth 5.
    return Instance.model_validate({
        "name": "p", "horizon": {"periods": 4},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 16, "price_per_gpu_hour": 0.0}]}],
        "startups": [{"id": "s"}],
        "jobs": [_job("P", 1, 4, 2), _job("D", 5, 4, 1, after=["P"], **d_extra)],
    })


def _run(job: str, start: int, periods: int) -> Assignment:
    return Assignment(job=job, cluster="c", accelerator="H100", gpus=4, start=start,
                      end=start + periods, cost=0.0, value=0.0)


@pytest.mark.parametrize(("p_start", "d_start", "ok"), [
    (0, 2, True),    # P ends at 2, D starts at 2: allowed
    (0, 1, False),   # D starts one period before P ends
    (0, 3, True),
    (1, 3, True),    # P ends at 3
    (1, 2, False),
    (2, 3, False),   # P ends at 4: D (last start 3) can never follow it
    (None, 2, False),  # D without P
])
def test_precedence_rows_are_exact(p_start: int | None, d_start: int, ok: bool) -> None:
    model = build(_precedence_instance())
    runs = [_run("D", d_start, 1)]
    if p_start is not None:
        runs.append(_run("P", p_start, 2))
    values = model.encode(runs)
    assert sum(values) == len(runs)  # every run is a placement of the model
    violated = model.check(values)
    if ok:
        assert violated == []
    else:
        assert violated and all(name.startswith("after[D,P,") for name in violated)


@pytest.mark.parametrize(("d_window", "expected"), [
    # D must end by 2 (start 0 or 1): P (2 periods from 0) ends at 2 at the earliest -> D
    # cannot run; P alone -> 1.
    ({"deadline": 2}, 1),
    # D may end at 3, i.e. start at 2, exactly when P (0..1) ends -> both: 6.
    ({"deadline": 3}, 6),
])
def test_dependent_starts_exactly_when_predecessor_ends(backend: str, d_window: dict[str, int],
                                                        expected: float) -> None:
    plan = solve_checked(_precedence_instance(**d_window), backend)
    assert_optimum(plan, expected, backend)
    if expected == 6 and backend != "greedy":
        assert (plan.assignment("P").start, plan.assignment("P").end) == (0, 2)
        assert plan.assignment("D").start == 2


# -- cap rows count running periods inside the window -------------------------------------------
def test_cap_row_coefficients_count_overlap() -> None:
    # Horizon 4, 10-hour periods. L: 4 GPUs x 3 periods (starts 0, 1) in c1 only.
    # Window cap on periods [2, 3], GPU-hours: per running period 4 * 10 = 40; L@0 (0..2)
    # runs once in the window -> 40; L@1 (1..3) twice -> 80. TPP horizon cap: 4 * 15832 per
    # period, 3 periods -> 189984 for both starts.
    jobs = [_job("L", 1, 4, 3, clusters=["c1"])]
    caps = [{"id": "w", "metric": "gpu_hours", "per": "window", "periods": [2, 3],
             "limit": 1},
            {"id": "t", "metric": "tpp", "per": "horizon", "limit": 1}]
    inst = _instance(jobs, horizon={"periods": 4, "period_hours": 10.0}, caps=caps)
    model = build(inst)
    starts = {i: p.start for i, p in enumerate(model.placements)}
    rows = {r.name.split("[")[1].split(",")[0]: r for r in model.rows if r.kind == "cap"}
    window = rows["w"]
    assert {starts[v]: c for v, c in zip(window.vars, window.coefs, strict=True)} == {
        0: 40.0, 1: 80.0}
    assert window.sense == "<=" and window.rhs == 1
    tpp = rows["t"]
    assert {starts[v]: c for v, c in zip(tpp.vars, tpp.coefs, strict=True)} == {
        0: 3 * 4 * H100_TPP, 1: 3 * 4 * H100_TPP}


def test_share_row_coefficients() -> None:
    # One period; c1 has H100 (8) and, added here, A100 (8). Job h: 8 H100; job a: 8 A100.
    # Cap: H100 GPUs at most 0.25 of all GPUs. Share row: 8 x_h - 0.25 * (8 x_h + 8 x_a) <= 0,
    # i.e. coefficients h: 6, a: -2.
    clusters = [{"id": "c1", "region": "r1", "country": "US", "pools": [
        {"accelerator": "H100", "gpus": 8, "price_per_gpu_hour": 1.0},
        {"accelerator": "A100", "gpus": 8, "price_per_gpu_hour": 1.0}]}]
    jobs = [_job("h", 1, 8, 1),
            {"id": "a", "startup": "s", "value": 1,
             "options": [{"accelerator": "A100", "gpus": 8, "periods": 1}]}]
    cap = {"id": "k", "metric": "gpus", "accelerators": ["H100"], "share_of": {},
           "fraction": 0.25}
    inst = _instance(jobs, horizon={"periods": 1}, clusters=clusters, caps=[cap])
    model = build(inst)
    (row,) = [r for r in model.rows if r.kind == "cap"]
    by_job = {model.placements[v].job: c for v, c in zip(row.vars, row.coefs, strict=True)}
    assert by_job == {"h": 6.0, "a": -2.0}
    assert row.rhs == 0.0 and row.sense == "<="


def test_mandatory_job_without_placement_is_known_infeasible() -> None:
    # A mandatory job of 16 GPUs where the largest pool has 8: no placement, so the model is
    # infeasible before any solver runs.
    model = build(_instance([_job("m", 1, 16, 1, mandatory=True)]))
    assert model.num_vars == 0
    assert model.infeasible and "m" in model.infeasible[0]


# -- thinned precedence: long edges keep a few rows and one order row ----------------------------
def _long_precedence_instance() -> Instance:
    # Horizon 12: P (2 periods) may start 0..10, D (1 period) after P may start 0..11.
    return Instance.model_validate({
        "name": "lp", "horizon": {"periods": 12},
        "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 16, "price_per_gpu_hour": 0.0}]}],
        "startups": [{"id": "s"}],
        "jobs": [_job("P", 1, 4, 2), _job("D", 5, 4, 1, after=["P"])],
    })


@pytest.fixture
def thinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every edge's precedence rows thinned to two (and the order row)."""
    from gpualloc.optimizer.model import precedence

    monkeypatch.setattr(precedence, "PRECEDENCE_FULL_TERMS", 0)
    monkeypatch.setattr(precedence, "PRECEDENCE_ROWS", 2)


def test_thinned_precedence_rows_are_exact(thinned: None) -> None:
    model = build(_long_precedence_instance())
    rows = [r.name for r in model.rows if r.kind == "precedence"]
    # D's starts before P's first end (0, 1), two of the rest (2, 11), the order row; in full,
    # one row per start of D (12)
    assert rows == ["order[D,P]", "after[D,P,0]", "after[D,P,1]", "after[D,P,2]",
                    "after[D,P,11]"]
    for d_start in range(12):
        for p_start in [None, *range(11)]:
            runs = [_run("D", d_start, 1)] + ([] if p_start is None else [_run("P", p_start, 2)])
            violated = model.check(model.encode(runs))
            ok = p_start is not None and p_start + 2 <= d_start
            assert (violated == []) == ok, (p_start, d_start, violated)
            assert all(n.startswith(("after[D,P,", "order[D,P]")) for n in violated)


def test_precedence_rows_thin_only_past_the_threshold() -> None:
    model = build(_long_precedence_instance())  # 12 x (up to 11 + 12) terms: far below
    assert not any(r.name.startswith("order[") for r in model.rows)


@pytest.mark.parametrize("backend", ["cpsat", "highs", "interval", "greedy"])
@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(instances(jobs=8, periods=8))
def test_thinned_precedence_keeps_the_optimum(backend: str, inst: Instance) -> None:
    want = solve_checked(inst, "cpsat")
    with pytest.MonkeyPatch.context() as mp:
        from gpualloc.optimizer.model import precedence

        mp.setattr(precedence, "PRECEDENCE_FULL_TERMS", 0)
        mp.setattr(precedence, "PRECEDENCE_ROWS", 2)
        got = solve_checked(inst, backend)
    if want.objective is None:  # infeasible either way
        assert got.objective is None
    else:
        assert_optimum(got, want.objective, backend)

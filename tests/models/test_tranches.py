"""Credit tranches (DESIGN.md "Credit tranches") and fairness floors (rule 8).

The brute-force checks below are written from DESIGN.md alone: spend is charged per period,
carry-over compares cumulative spend with the released credits at every period, no carry-over
compares each tranche's periods with that tranche; a share is scheduled option values over
the sum of each job's largest option value.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpualloc.models import Assignment, Instance, InstanceError, Plan, load_instance
from gpualloc.models.io import instance_from_mapping
from gpualloc.models.metrics import plan_metrics
from gpualloc.models.scenarios import apply
from gpualloc.models.validator import validate
from gpualloc.optimizer.model.formulation import build

REPO = Path(__file__).resolve().parents[2]
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6


def tiny(tranches: list[dict[str, Any]] | None = None, *, carry_over: bool = True,
         credits: float | None = None, min_share: float | None = None, periods: int = 4,
         prices: tuple[float, float] = (1.0, 2.0), values: tuple[float, ...] = (3, 2, 4),
         lengths: tuple[int, ...] = (2, 1, 3), gpus: int = 4) -> dict[str, Any]:
    """One cluster with two pools, start-up ``a`` (the one under test) and ``b``."""
    a: dict[str, Any] = {"id": "a", "credits": credits}
    if tranches is not None:
        a["tranches"] = tranches
        a["carry_over"] = carry_over
    if min_share is not None:
        a["min_share"] = min_share
    jobs = [{"id": f"j{k}", "startup": "a", "value": v,
             "options": [{"accelerator": "H800", "gpus": 2, "periods": n},
                         {"accelerator": "H20", "gpus": 2, "periods": n, "value": v / 2}]}
            for k, (v, n) in enumerate(zip(values, lengths, strict=True))]
    jobs.append({"id": "other", "startup": "b", "value": 5,
                 "options": [{"accelerator": "H800", "gpus": gpus, "periods": 2}]})
    return {"name": "tiny", "horizon": {"periods": periods, "period_hours": 1},
            "clusters": [{"id": "c", "region": "r", "country": "CN", "pools": [
                {"accelerator": "H800", "gpus": gpus, "price_per_gpu_hour": prices[0]},
                {"accelerator": "H20", "gpus": gpus, "price_per_gpu_hour": prices[1]}]}],
            "startups": [a, {"id": "b", "credits": None}], "jobs": jobs}


# -- schema and located errors ---------------------------------------------------------------
def test_credits_default_to_the_sum_of_the_tranches() -> None:
    inst = Instance.model_validate(tiny([{"from": 0, "credits": 5}, {"from": 2, "credits": 7}]))
    a = inst.startup_by_id["a"]
    assert a.credits == 12 and a.carry_over is True
    assert [a.released(t) for t in range(4)] == [5, 5, 12, 12]


def test_tranche_errors_are_located_and_reported_at_once() -> None:
    data = tiny([{"from": 0, "credits": 5}, {"from": 0, "credits": -1},
                 {"from": 9, "credits": 2}], credits=100)
    with pytest.raises(InstanceError) as e:
        instance_from_mapping(data)
    text = "\n".join(e.value.messages)
    assert "startups[0].tranches[1].from: from 0 is not after tranches[0].from 0" in text
    assert "startups[0].tranches[1].credits: Input should be greater than or equal to 0" in text
    assert "startups[0].tranches[2].from: period 9 is past the horizon" in text
    data = tiny([{"from": 0, "credits": 5}, {"from": 2, "credits": 6}], credits=12)
    with pytest.raises(InstanceError) as e:
        instance_from_mapping(data)
    assert e.value.messages == ["startups[0].credits: credits 12 differ from the sum of the "
                                "tranches 11"]


def test_cli_exits_2_on_a_bad_tranche(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from gpualloc.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny([{"from": 3, "credits": 1}, {"from": 1, "credits": 1}])))
    result = CliRunner().invoke(app, ["solve", str(path), "--quiet"])
    assert result.exit_code == 2
    assert "startups[0].tranches[1].from" in result.output
    assert "Traceback" not in result.output


def test_bundled_portfolio_with_tranches_loads() -> None:
    inst = load_instance(REPO / "instances" / "portfolio-tranches.yaml")
    base = load_instance(REPO / "instances" / "portfolio.yaml")
    with_tranches = [s.id for s in inst.startups if len(s.tranches) == 2]
    assert len(with_tranches) >= 2
    for s in inst.startups:  # the totals are the lump sums of the base
        assert s.credits == pytest.approx(base.startup_by_id[s.id].credits)


# -- the rule, brute force from DESIGN.md ----------------------------------------------------
def brute_tranche_ok(inst: Instance, assignments: list[Assignment]) -> bool:
    """Rule 6 with tranches for start-up ``a``, straight from DESIGN.md."""
    a = inst.startup_by_id["a"]
    horizon, hours = inst.horizon.periods, inst.horizon.period_hours
    spend = [0.0] * horizon
    total = 0.0
    for x in assignments:
        if inst.job_by_id[x.job].startup != "a":
            continue
        price = inst.cluster_by_id[x.cluster].pool(x.accelerator).price_per_gpu_hour
        for t in range(x.start, x.end):
            spend[t] += x.gpus * hours * price
        total += x.gpus * (x.end - x.start) * hours * price
    if a.credits is not None and total > a.credits * (1 + TOL) + TOL:
        return False
    if not a.tranches:
        return True
    froms = [tr.from_ for tr in a.tranches]
    if a.carry_over:
        for t in range(horizon):
            released = sum(tr.credits for tr in a.tranches if tr.from_ <= t)
            if sum(spend[: t + 1]) > released * (1 + TOL) + TOL:
                return False
        return True
    if sum(spend[: froms[0]]) > TOL:
        return False
    for k, tr in enumerate(a.tranches):
        stop = froms[k + 1] if k + 1 < len(froms) else horizon
        if sum(spend[tr.from_:stop]) > tr.credits * (1 + TOL) + TOL:
            return False
    return True


def brute_share(inst: Instance, assignments: list[Assignment], startup: str) -> float | None:
    asked = sum(max(j.option_value(o) for o in j.options) for j in inst.jobs
                if j.startup == startup)
    if asked == 0:
        return None
    return sum(x.value for x in assignments if inst.job_by_id[x.job].startup == startup) / asked


def every_plan(inst: Instance) -> list[list[Assignment]]:
    """Every combination of at most one placement per job (capacity ignored)."""
    choices = []
    for job in inst.jobs:
        mine: list[Assignment | None] = [None]
        for k, option, cluster in inst.placements(job):
            for s in range(job.release, inst.deadline(job) - option.periods + 1):
                mine.append(Assignment(job=job.id, cluster=cluster.id,
                                       accelerator=option.accelerator, gpus=option.gpus,
                                       start=s, end=s + option.periods,
                                       cost=inst.cost(cluster, option), option=k,
                                       value=job.option_value(option)))
        choices.append(mine)
    return [[x for x in combo if x is not None] for combo in itertools.product(*choices)]


def brute_capacity_ok(inst: Instance, assignments: list[Assignment]) -> bool:
    for cluster in inst.clusters:
        for pool in cluster.pools:
            for t in range(inst.horizon.periods):
                used = sum(x.gpus for x in assignments if x.cluster == cluster.id and
                           x.accelerator == pool.accelerator and x.start <= t < x.end)
                if used > pool.gpus_at(t):
                    return False
    return True


def plan_of(inst: Instance, assignments: list[Assignment]) -> Plan:
    done = {x.job for x in assignments}
    return Plan(instance=inst.name, status="feasible", assignments=tuple(assignments),
                unscheduled=tuple(j.id for j in inst.jobs if j.id not in done))


tranche_lists = st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 2.0, 4.0, 6.0, 9.0])),
                         min_size=1, max_size=3, unique_by=lambda t: t[0]).map(
    lambda ts: [{"from": f, "credits": c} for f, c in sorted(ts)])


def brute_optimum(inst: Instance) -> float | None:
    """The best objective over every plan the brute-force rules accept."""
    best = None
    for combo in every_plan(inst):
        if not (brute_capacity_ok(inst, combo) and brute_tranche_ok(inst, combo)):
            continue
        share = brute_share(inst, combo, "a")
        floor = inst.startup_by_id["a"].min_share
        if floor is not None and share is not None and share < floor - TOL:
            continue
        value = sum(inst.startup_by_id[inst.job_by_id[x.job].startup].weight * x.value
                    for x in combo)
        best = value if best is None else max(best, value)
    return best


@PROPERTY
@given(tranches=tranche_lists, carry=st.booleans(),
       floor=st.sampled_from([None, 0.0, 0.3, 0.5, 0.8]))
def test_validator_agrees_with_brute_force(tranches: list[dict[str, Any]], carry: bool,
                                           floor: float | None) -> None:
    inst = Instance.model_validate(tiny(tranches, carry_over=carry, min_share=floor,
                                        lengths=(2, 1, 1)))
    for combo in every_plan(inst)[::7]:
        rules = {v.rule for v in validate(inst, plan_of(inst, combo))}
        assert (6 not in rules) == brute_tranche_ok(inst, combo), combo
        share = brute_share(inst, combo, "a")
        assert share == pytest.approx(plan_metrics(inst, plan_of(inst, combo))
                                      ["startups"]["a"]["share"])
        below = floor is not None and share is not None and share < floor - TOL
        assert (8 in rules) == below


@PROPERTY
@given(tranches=tranche_lists, carry=st.booleans(), floor=st.sampled_from([None, 0.3, 0.6]))
def test_cpsat_finds_the_brute_force_optimum(tranches: list[dict[str, Any]], carry: bool,
                                             floor: float | None) -> None:
    from tests.conftest import assert_infeasible, assert_optimum, solve_checked

    inst = Instance.model_validate(tiny(tranches, carry_over=carry, min_share=floor,
                                        lengths=(2, 1, 1)))
    expected = brute_optimum(inst)
    plan = solve_checked(inst, "cpsat")
    if expected is None:
        assert_infeasible(plan, "cpsat")
    else:
        assert_optimum(plan, expected, "cpsat")


# -- the model -------------------------------------------------------------------------------
def test_lump_sum_model_has_no_tranche_rows_and_one_tranche_changes_nothing() -> None:
    lump = build(Instance.model_validate(tiny(credits=12)))
    assert not [r for r in lump.rows if r.kind in ("tranche", "floor")]
    for carry in (True, False):
        single = build(Instance.model_validate(tiny([{"from": 0, "credits": 12}],
                                                    carry_over=carry)))
        assert [(r.name, r.vars, r.coefs, r.rhs) for r in single.rows] == \
            [(r.name, r.vars, r.coefs, r.rhs) for r in lump.rows]


def test_tranche_rows_follow_the_release() -> None:
    inst = Instance.model_validate(tiny([{"from": 1, "credits": 4}, {"from": 3, "credits": 8}],
                                        values=(3, 2, 4), lengths=(2, 1, 3)))
    rows = {r.name: r for r in build(inst).rows if r.kind == "tranche"}
    assert set(rows) == {"tranche[a,0-0]", "tranche[a,0-2]"}
    assert rows["tranche[a,0-0]"].rhs == 0.0 and rows["tranche[a,0-2]"].rhs == 4.0
    inst = Instance.model_validate(tiny([{"from": 1, "credits": 4}, {"from": 3, "credits": 8}],
                                        carry_over=False))
    rows = {r.name: r for r in build(inst).rows if r.kind == "tranche"}
    assert set(rows) == {"tranche[a,0-0]", "tranche[a,1-2]", "tranche[a,3-3]"}


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_report_spend_per_tranche_and_binding() -> None:
    inst = Instance.model_validate(tiny([{"from": 0, "credits": 4}, {"from": 2, "credits": 4}]))
    x = Assignment(job="j0", cluster="c", accelerator="H800", gpus=2, start=0, end=2, cost=4,
                   value=3, option=0)
    m = plan_metrics(inst, plan_of(inst, [x]))["startups"]["a"]
    assert m["spend_by_period"] == [2.0, 2.0, 0.0, 0.0]
    first, second = m["tranches"]
    assert first["periods"] == [0, 1] and first["spend"] == 4 and first["binding"]
    assert first["binding_periods"] == [1]
    assert second["released"] == 8 and second["cumulative_spend"] == 4
    assert not second["binding"]
    assert m["share"] == pytest.approx(3 / 9)


# -- what-if change kinds ----------------------------------------------------------------------
def test_tranche_change_kinds() -> None:
    inst = Instance.model_validate(tiny([{"from": 0, "credits": 4}, {"from": 2, "credits": 6}]))
    new = apply(inst, [{"kind": "tranche", "startup": "a", "index": 1, "scale": 0.5}])
    assert [t.credits for t in new.startup_by_id["a"].tranches] == [4, 3]
    assert new.startup_by_id["a"].credits == 7
    new = apply(inst, [{"kind": "tranche", "startup": "a", "index": 0, "set": 1}])
    assert new.startup_by_id["a"].credits == 7
    new = apply(inst, [{"kind": "tranche_shift", "startup": "a", "index": 1, "by": 1}])
    assert [t.from_ for t in new.startup_by_id["a"].tranches] == [0, 3]
    new = apply(inst, [{"kind": "credits", "startup": "a", "scale": 2}])
    assert [t.credits for t in new.startup_by_id["a"].tranches] == [8, 12]
    assert new.startup_by_id["a"].credits == 20


@pytest.mark.parametrize(("change", "where"), [
    ({"kind": "tranche", "startup": "zz", "index": 0, "set": 1}, "changes[0].startup"),
    ({"kind": "tranche", "startup": "a", "index": 5, "set": 1}, "changes[0].index"),
    ({"kind": "tranche", "startup": "a", "index": 0}, "changes[0]"),
    ({"kind": "tranche_shift", "startup": "a", "index": 0, "by": -1}, "changes[0].by"),
    ({"kind": "tranche_shift", "startup": "a", "index": 1, "by": -2},
     "changes (resulting instance) startups[0].tranches[1].from"),
    ({"kind": "tranche_shift", "startup": "a", "index": 1, "by": 9},
     "changes (resulting instance) startups[0].tranches[1].from"),
])
def test_tranche_change_errors_are_located(change: dict[str, Any], where: str) -> None:
    inst = Instance.model_validate(tiny([{"from": 0, "credits": 4}, {"from": 2, "credits": 6}]))
    with pytest.raises(InstanceError) as e:
        apply(inst, [change])
    assert [i.location for i in e.value.issues] == [where]

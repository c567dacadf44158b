"""Each plan rule of DESIGN.md, and each instance feature, changes the optimum of a tiny instance.

Every expected optimum is worked out by hand in the comments; where useful the same instance
without the rule (or feature) is solved too, so that the test shows the rule really binds.
Every test runs on every available backend (``backend`` fixture); heuristic backends must
return valid plans no better than the optimum (``assert_optimum``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gpualloc.models import Instance, SolveStatus
from tests.conftest import assert_infeasible, assert_optimum, solve_checked

H100_TPP = 15832  # catalog: 3A090.a under the default regime (oct2023)
H20_TPP = 2368  # catalog: unrestricted under oct2023 (TPP < 2400, density 2.9 < 3.2)


def job(ident: str, value: float, gpus: int = 8, periods: int = 1, acc: str = "H100",
        **extra: Any) -> dict[str, Any]:
    """A job with one option; ``extra`` sets job fields (release, deadline, after, ...)."""
    return {"id": ident, "startup": extra.pop("startup", "s"), "value": value,
            "options": [{"accelerator": acc, "gpus": gpus, "periods": periods}], **extra}


def pool(acc: str = "H100", gpus: int = 8, price: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"accelerator": acc, "gpus": gpus, "price_per_gpu_hour": price, **extra}


def make(jobs: list[dict[str, Any]], *, periods: int = 1, hours: float = 1.0,
         pools: list[dict[str, Any]] | None = None,
         clusters: list[dict[str, Any]] | None = None,
         startups: list[dict[str, Any]] | None = None, **extra: Any) -> Instance:
    """A tiny instance: by default one US cluster ``c1`` with one 8-GPU H100 pool at price 1,
    one start-up ``s`` without credit limit."""
    data = {
        "name": "tiny",
        "horizon": {"periods": periods, "period_hours": hours},
        "clusters": clusters or [{"id": "c1", "region": "r1", "country": "US",
                                  "pools": pools or [pool()]}],
        "startups": startups or [{"id": "s"}],
        "jobs": jobs,
        **extra,
    }
    return Instance.model_validate(data)


def optimum(instance: Instance, backend: str, expected: float, **kw: Any):
    plan = solve_checked(instance, backend, **kw)
    assert_optimum(plan, expected, backend)
    return plan


def ran(plan) -> set[str]:
    return {a.job for a in plan.assignments}


# -- rule 1: each job at most once, with one of its own options ---------------------------
def test_rule1_job_runs_at_most_once_with_one_option(backend: str) -> None:
    # One job of value 5 with two options of 4 GPUs x 1 period (the second worth 3); pool of
    # 8 GPUs, 2 periods. Capacity would allow both options in both periods (4 runs: 5+5+3+3 =
    # 16), rule 1 allows one run of one option: the best is option 0 -> 5.
    a = job("a", 5, gpus=4)
    a["options"].append({"accelerator": "H100", "gpus": 4, "periods": 1, "value": 3})
    plan = optimum(make([a], periods=2), backend, 5)
    if backend == "greedy":
        return
    assert len(plan.assignments) == 1 and plan.assignments[0].option == 0


def test_rule1_as_two_jobs_both_run(backend: str) -> None:
    # Control for the test above: the same two runs as two separate jobs (5 and 3) both fit
    # in period 0 (4 + 4 <= 8) -> 8. So only rule 1 caps the single job at 5.
    b = job("b", 3, gpus=4)
    optimum(make([job("a", 5, gpus=4), b]), backend, 8)


# -- rule 2: pool, allowed clusters, max_gpus_per_job --------------------------------------
TWO_CLUSTERS = [
    {"id": "c1", "region": "r1", "country": "US", "pools": [pool()]},
    {"id": "c2", "region": "r2", "country": "US", "pools": [pool()]},
]


@pytest.mark.parametrize(("change", "expected"), [
    # Two jobs (5 and 3) of 8 GPUs, one period; two clusters with an 8-GPU H100 pool each.
    # Unrestricted both run, one per cluster: 8. Each restriction below removes c2 for both
    # jobs, leaving one 8-GPU pool: only the job worth 5 runs.
    ("none", 8),
    ("startup_regions", 5),   # start-up regions [r1]
    ("job_clusters", 5),      # both jobs clusters [c1]
    ("job_regions", 5),       # both jobs regions [r1]
    ("no_pool", 5),           # c2 has an A100 pool, no H100 pool
    ("max_gpus_per_job", 5),  # c2's pool takes gangs of at most 4 GPUs
])
def test_rule2_cluster_pool_and_gang_size(backend: str, change: str, expected: float) -> None:
    clusters = copy.deepcopy(TWO_CLUSTERS)
    startups = [{"id": "s"}]
    jobs = [job("a", 5), job("b", 3)]
    if change == "startup_regions":
        startups[0]["regions"] = ["r1"]
    elif change == "job_clusters":
        for j in jobs:
            j["clusters"] = ["c1"]
    elif change == "job_regions":
        for j in jobs:
            j["regions"] = ["r1"]
    elif change == "no_pool":
        clusters[1]["pools"] = [pool("A100")]
    elif change == "max_gpus_per_job":
        clusters[1]["pools"][0]["max_gpus_per_job"] = 4
    plan = optimum(make(jobs, clusters=clusters, startups=startups), backend, expected)
    if expected == 5 and backend != "greedy":
        assert [(a.job, a.cluster) for a in plan.assignments] == [("a", "c1")]


# -- rule 3: release and deadline ------------------------------------------------------------
@pytest.mark.parametrize(("windows", "expected"), [
    # Two jobs (5 and 3) of 8 GPUs x 1 period, an 8-GPU pool, 2 periods: without windows
    # they run one after the other -> 8.
    ({}, 8),
    # Both must end by period 1, i.e. both want period 0: only one runs -> 5.
    ({"a": {"deadline": 1}, "b": {"deadline": 1}}, 5),
    # Both released at period 1: both want period 1 -> 5.
    ({"a": {"release": 1}, "b": {"release": 1}}, 5),
    # Compatible windows: b in period 0, a in period 1 -> 8.
    ({"a": {"release": 1}, "b": {"deadline": 1}}, 8),
])
def test_rule3_release_and_deadline(backend: str, windows: dict[str, Any],
                                    expected: float) -> None:
    jobs = [job("a", 5, **windows.get("a", {})), job("b", 3, **windows.get("b", {}))]
    plan = optimum(make(jobs, periods=2), backend, expected)
    for a in plan.assignments:
        j = next(x for x in jobs if x["id"] == a.job)
        assert a.start >= j.get("release", 0) and a.end <= j.get("deadline", 2)


# -- rule 4: capacity ------------------------------------------------------------------------
@pytest.mark.parametrize(("gpus", "expected"), [
    # Two jobs of value 5 and 3 both want 8 GPUs in the only period: an 8-GPU pool takes one
    # -> 5; a 16-GPU pool takes both -> 8.
    (8, 5),
    (16, 8),
])
def test_rule4_capacity(backend: str, gpus: int, expected: float) -> None:
    optimum(make([job("a", 5), job("b", 3)], pools=[pool(gpus=gpus)]), backend, expected)


def test_rule4_capacity_of_a_multi_period_job(backend: str) -> None:
    # Pool 8, 3 periods. Job L: 8 GPUs x 2 periods, worth 6. Jobs a, b, c: 8 GPUs x 1 period,
    # worth 4, 3 and 2. Without L: a, b, c fill the 3 periods (9). With L (2 periods) only one
    # short job fits: 6 + 4 = 10 > 9 -> 10, and L never overlaps the short job.
    plan = optimum(make([job("L", 6, periods=2), job("a", 4), job("b", 3), job("c", 2)],
                        periods=3), backend, 10)
    if backend != "greedy":
        assert ran(plan) == {"L", "a"}


# -- rule 5: dependencies --------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "expected", "without_after"), [
    # P: 8 GPUs x 1 period worth 1; D (after P): 8 GPUs x 1 period worth 5; 16-GPU pool,
    # 2 periods, so capacity never binds.
    # D must end by period 1, so it starts at 0, but P cannot end by 0: D never runs -> 1
    # (P alone). Without the dependency both run in period 0: 6.
    ("deadline", 1, 6),
    # D released at 1: P at 0 ends at 1 = D's start -> both run: 6.
    ("release", 6, 6),
    # P can never run (its only option is an A100, no pool has one): D cannot run -> 0;
    # without the dependency D alone -> 5.
    ("no_predecessor", 0, 5),
])
def test_rule5_dependencies(backend: str, variant: str, expected: float,
                            without_after: float) -> None:
    p = job("P", 1, acc="A100" if variant == "no_predecessor" else "H100")
    d = job("D", 5, after=["P"], **({"deadline": 1} if variant == "deadline" else {}),
            **({"release": 1} if variant == "release" else {}))
    pools = [pool(gpus=16)]
    plan = optimum(make([p, d], periods=2, pools=pools), backend, expected)
    if expected == 6 and backend != "greedy":
        assert plan.assignment("P").end <= plan.assignment("D").start
    d.pop("after")
    optimum(make([p, d], periods=2, pools=pools), backend, without_after)


def test_rule5_dependency_forces_a_loss_making_predecessor(backend: str) -> None:
    # cost_weight 1, price 1/GPU-hour, 1-hour periods, pool 8, 2 periods. P: 1 GPU x 1 period,
    # value 0, cost 1 -> net -1. D (after P): 1 GPU x 1 period, value 6, cost 1 -> net 5.
    # D needs P: 5 - 1 = 4 (rather than 0). Without the dependency: D alone, 5.
    jobs = [job("P", 0, gpus=1), job("D", 6, gpus=1, after=["P"])]
    objective = {"cost_weight": 1.0}
    plan = optimum(make(jobs, periods=2, objective=objective), backend, 4)
    if backend != "greedy":
        assert ran(plan) == {"P", "D"}
    jobs[1].pop("after")
    optimum(make(jobs, periods=2, objective=objective), backend, 5)


# -- rule 6: credits -------------------------------------------------------------------------
def _credit_jobs(startup_of_b: str = "s") -> list[dict[str, Any]]:
    # price 1/GPU-hour, 100-hour periods: A 8 GPUs -> 800 credits, B 4 -> 400, C 2 -> 200.
    return [job("A", 5, gpus=8), job("B", 4, gpus=4, startup=startup_of_b),
            job("C", 2, gpus=2)]


@pytest.mark.parametrize(("credits", "expected"), [
    # 16-GPU pool, 1 period: all three fit (14 GPUs). Spend: A+B+C = 1400.
    (None, 11),   # unlimited: all -> 5 + 4 + 2
    (1000, 7),    # A+C = 1000 (exactly the credits) worth 7 beats B+C (600) worth 6; A+B=1200
    (999, 6),     # A+C (1000) no longer fits: B+C (600) worth 6 beats A alone (5)
    (0, 0),       # nothing can run
])
def test_rule6_credits(backend: str, credits: float | None, expected: float) -> None:
    inst = make(_credit_jobs(), hours=100.0, pools=[pool(gpus=16)],
                startups=[{"id": "s", "credits": credits}])
    optimum(inst, backend, expected)


def test_rule6_credits_are_per_startup(backend: str) -> None:
    # As above with credits 1000 for s, but B belongs to t (unlimited): s runs A+C (1000),
    # t runs B -> 11.
    inst = make(_credit_jobs("t"), hours=100.0, pools=[pool(gpus=16)],
                startups=[{"id": "s", "credits": 1000}, {"id": "t", "credits": None}])
    optimum(inst, backend, 11)


# -- rule 7: caps ----------------------------------------------------------------------------
def test_rule7_cap_per_period(backend: str) -> None:
    # Two jobs of value 5 and 3 want 8 H100 each; the 16-GPU pool takes both (8), but a cap
    # of 8 GPUs per period takes one -> 5.
    cap = {"id": "k", "metric": "gpus", "per": "period", "limit": 8}
    inst = make([job("a", 5), job("b", 3)], pools=[pool(gpus=16)], caps=[cap])
    optimum(inst, backend, 5)


@pytest.mark.parametrize(("limit", "expected"), [
    # 2 periods of 10 hours, 8-GPU pool; a and b (5, 3): 8 GPUs x 1 period = 80 GPU-hours
    # each. Over the horizon: 80 -> one job (5); 160 -> both, one per period (8); 79 -> none.
    (80.0, 5),
    (160.0, 8),
    (79.0, 0),
])
def test_rule7_cap_over_the_horizon(backend: str, limit: float, expected: float) -> None:
    cap = {"id": "k", "metric": "gpu_hours", "per": "horizon", "limit": limit}
    optimum(make([job("a", 5), job("b", 3)], periods=2, hours=10.0, caps=[cap]), backend,
            expected)


@pytest.mark.parametrize(("window", "limit", "expected"), [
    # 16-GPU pool, 2 periods; four jobs (5, 4, 3, 2) of 8 GPUs x 1 period: all fit (two per
    # period) -> 14.
    (None, None, 14),
    # At most 8 GPUs in period 0 (window [0, 0]): one job there, two in period 1 -> 5+4+3.
    ((0, 0), 8, 12),
    # At most 16 GPU-periods summed over [0, 1]: two jobs -> 5+4.
    ((0, 1), 16, 9),
])
def test_rule7_cap_over_a_window(backend: str, window: tuple[int, int] | None,
                                 limit: float | None, expected: float) -> None:
    caps = [] if window is None else [{"id": "k", "metric": "gpus", "per": "window",
                                       "periods": list(window), "limit": limit}]
    jobs = [job("a", 5), job("b", 4), job("c", 3), job("d", 2)]
    optimum(make(jobs, periods=2, pools=[pool(gpus=16)], caps=caps), backend, expected)


@pytest.mark.parametrize(("length", "expected"), [
    # 8-GPU pool, 3 periods; jobs 5, 3, 2 of 8 GPUs x 1 period. Cap: at most 8 GPUs summed
    # over every `length` consecutive periods.
    # length 1 (= per period, redundant with capacity): all three -> 10.
    (1, 10),
    # length 2: windows {0,1} and {1,2} take one job each -> jobs in periods 0 and 2 -> 5+3.
    (2, 8),
    # length 3: one window, one job -> 5.
    (3, 5),
])
def test_rule7_rolling_cap(backend: str, length: int, expected: float) -> None:
    cap = {"id": "k", "metric": "gpus", "per": "rolling", "length": length, "limit": 8}
    plan = optimum(make([job("a", 5), job("b", 3), job("c", 2)], periods=3, caps=[cap]),
                   backend, expected)
    if length == 2 and backend != "greedy":
        assert sorted(a.start for a in plan.assignments) == [0, 2]


def test_rule7_rolling_cap_counts_every_running_period(backend: str) -> None:
    # 8-GPU pool, 4 periods; rolling cap on GPUs summed over every 2 consecutive periods.
    # L: 4 GPUs x 3 periods worth 10; S: 8 GPUs x 1 period worth 4. Capacity keeps S out of
    # L's periods, so L at 0..2 and S at 3 (or L at 1..3 and S at 0): the window holding S
    # and one period of L sums 8 + 4 = 12, the windows inside L 4 + 4 = 8.
    # Limit 12: both run -> 14. Limit 11: S never fits next to L -> L alone, 10.
    jobs = [job("L", 10, gpus=4, periods=3), job("S", 4)]
    for limit, expected in ((12, 14), (11, 10)):
        cap = {"id": "k", "metric": "gpus", "per": "rolling", "length": 2, "limit": limit}
        optimum(make(jobs, periods=4, caps=[cap]), backend, expected)


@pytest.mark.parametrize(("share_of", "expected"), [
    # 16-GPU H100 and 16-GPU A100 pools, 1 period. H1, H2: 8 H100 worth 10 each; A1: 8 A100
    # worth 1. All fit -> 21 without a cap.
    (None, 21),
    # H100 use at most half of all use: H1 + A1: 8 <= 0.5 * 16 -> 11; H1 + H2 + A1: 16 > 12;
    # H1 alone: 8 > 4. -> 11.
    ({}, 11),
    # H100 use at most half of the A100 use: at most 4 GPUs with A1 alone: no H100 -> 1.
    ({"accelerators": ["A100"]}, 1),
])
def test_rule7_share_cap(backend: str, share_of: dict[str, Any] | None,
                         expected: float) -> None:
    caps = [] if share_of is None else [{"id": "k", "metric": "gpus", "per": "period",
                                         "accelerators": ["H100"], "share_of": share_of,
                                         "fraction": 0.5}]
    jobs = [job("H1", 10), job("H2", 10), job("A1", 1, acc="A100")]
    inst = make(jobs, pools=[pool(gpus=16), pool("A100", gpus=16)], caps=caps)
    optimum(inst, backend, expected)


# Two clusters, each with an 8-GPU H100 (3A090.a) and an 8-GPU H20 (unrestricted) pool; one
# period. Jobs of 8 GPUs: a (s1, H100) 8, b (s2, H100) 4, c (s1, H20) 2, d (s2, H20) 1. All
# four fit (one per pool) -> 15 without caps.
SCOPE_CLUSTERS = [
    {"id": "cn1", "region": "cn-east", "country": "CN", "pools": [pool(), pool("H20")]},
    {"id": "us1", "region": "us-west", "country": "US", "pools": [pool(), pool("H20")]},
]
SCOPE_JOBS = [job("a", 8, startup="s1"), job("b", 4, startup="s2"),
              job("c", 2, acc="H20", startup="s1"), job("d", 1, acc="H20", startup="s2")]


@pytest.mark.parametrize(("cap", "expected"), [
    ({}, 15),
    # at most 8 H100 GPUs in the period: a or b -> a + c + d = 11
    ({"metric": "gpus", "limit": 8, "accelerators": ["H100"]}, 11),
    # the same through the export class (H100 is 3A090.a) -> 11
    ({"metric": "gpus", "limit": 8, "export_classes": ["3A090.a"]}, 11),
    # at most 8 unrestricted (H20) GPUs: c or d -> a + b + c = 14
    ({"metric": "gpus", "limit": 8, "export_classes": ["unrestricted"]}, 14),
    # at most 8 GPUs in cn1 (by cluster, region or country): 3 jobs run, drop d -> 14
    ({"metric": "gpus", "limit": 8, "clusters": ["cn1"]}, 14),
    ({"metric": "gpus", "limit": 8, "regions": ["cn-east"]}, 14),
    ({"metric": "gpus", "limit": 8, "countries": ["CN"]}, 14),
    # at most 8 GPUs for start-up s1: a or c -> a + b + d = 13
    ({"metric": "gpus", "limit": 8, "startups": ["s1"]}, 13),
    # filters combine with AND: no H100 in CN, so one H100 job (in us1) -> a + c + d = 11;
    # no H100 anywhere -> c + d = 3
    ({"metric": "gpus", "limit": 0, "accelerators": ["H100"], "countries": ["CN"]}, 11),
    ({"metric": "gpus", "limit": 0, "accelerators": ["H100"]}, 3),
    # TPP: 8 H100 = 126656, 8 H20 = 18944. Limit 8*15832 + 16*2368 = 164544 holds a + c + d
    # exactly (11) but not a + b (253312) -> 11; one unit less: a + c (145600) -> 10
    ({"metric": "tpp", "limit": 8 * H100_TPP + 16 * H20_TPP}, 11),
    ({"metric": "tpp", "limit": 8 * H100_TPP + 16 * H20_TPP - 1}, 10),
    # GPU-hours (168-hour periods): 3 jobs' worth (3 * 8 * 168 = 4032) -> drop d -> 14
    ({"metric": "gpu_hours", "limit": 3 * 8 * 168}, 14),
])
def test_rule7_cap_metric_and_scope(backend: str, cap: dict[str, Any], expected: float) -> None:
    caps = [{"id": "k", "per": "period", **cap}] if cap else []
    inst = make(copy.deepcopy(SCOPE_JOBS), hours=168.0, clusters=SCOPE_CLUSTERS,
                startups=[{"id": "s1"}, {"id": "s2"}], caps=caps)
    assert inst.tpp("H100") == H100_TPP and inst.tpp("H20") == H20_TPP
    assert inst.export_class("H100") == "3A090.a"
    assert inst.export_class("H20") == "unrestricted"
    optimum(inst, backend, expected)


# -- eligibility --------------------------------------------------------------------------
# cn1 (CN) has a 16-GPU H100 pool, us1 (US) an 8-GPU one. Start-ups: scn (HQ CN), sus (HQ US).
# Jobs of 8 H100 x 1 period: x (scn) 5, y (scn) 3, z (sus) 4. Without rules all run -> 12.
ELIG_CLUSTERS = [
    {"id": "cn1", "region": "cn-east", "country": "CN", "pools": [pool(gpus=16)]},
    {"id": "us1", "region": "us-west", "country": "US", "pools": [pool()]},
]


@pytest.mark.parametrize(("rule", "expected"), [
    (None, 12),
    # scn may not use 3A090.a in CN: cn1 serves only z, us1 one of x, y -> x + z = 9
    ({"export_classes": ["3A090.a"], "countries": ["CN"], "headquarters": ["CN"]}, 9),
    # the H100 is not 3A090.b: no effect -> 12
    ({"export_classes": ["3A090.b"], "countries": ["CN"], "headquarters": ["CN"]}, 12),
    # scn barred from everything (absent filters match all) -> z = 4
    ({"headquarters": ["CN"]}, 4),
    # nobody in CN: us1 serves one job -> x = 5
    ({"countries": ["CN"]}, 5),
    # sus barred in the US only: z moves to cn1 next to x, y takes us1 -> still 12
    ({"countries": ["US"], "headquarters": ["US"]}, 12),
])
def test_eligibility_rules(backend: str, rule: dict[str, Any] | None, expected: float) -> None:
    startups = [{"id": "scn", "headquarters": "CN"}, {"id": "sus", "headquarters": "US"}]
    jobs = [job("x", 5, startup="scn"), job("y", 3, startup="scn"), job("z", 4, startup="sus")]
    eligibility = [] if rule is None else [{"id": "rule", **rule}]
    inst = make(jobs, clusters=ELIG_CLUSTERS, startups=startups, eligibility=eligibility)
    plan = optimum(inst, backend, expected)
    for a in plan.assignments:
        assert inst.ineligibility(inst.job_by_id[a.job], a.accelerator,
                                  inst.cluster_by_id[a.cluster]) is None


def _restricted_instance(restricted: list[str], **extra: Any) -> Instance:
    # Job a: 8 H100 (3A090.a) worth 10, or 8 H20 worth 6; one cluster with both pools.
    a = job("a", 10)
    a["options"].append({"accelerator": "H20", "gpus": 8, "periods": 1, "value": 6})
    return make([a], pools=[pool(), pool("H20")],
                startups=[{"id": "s", "restricted": restricted}], **extra)


@pytest.mark.parametrize(("restricted", "extra", "expected"), [
    ([], {}, 10),                    # H100 allowed -> 10
    (["3A090.a"], {}, 6),            # H100 barred: the H20 option -> 6
    (["3A090.b"], {}, 10),           # neither chip is 3A090.b -> 10
    # the instance makes the H20 3A090.a explicitly (explicit class wins): both barred -> 0
    (["3A090.a"], {"accelerators": [{"name": "H20", "export_class": "3A090.a"}]}, 0),
    # under the jan2026 regime the H100 (TPP 15832 < 21000, 3.35 TB/s < 6.5) is 3A090.b:
    # a 3A090.a restriction no longer bars it -> 10
    (["3A090.a"], {"regime": "jan2026"}, 10),
])
def test_startup_restricted_classes(backend: str, restricted: list[str],
                                    extra: dict[str, Any], expected: float) -> None:
    inst = _restricted_instance(restricted, **extra)
    plan = optimum(inst, backend, expected)
    barred = {(i.job, i.option, i.cluster) for i in plan.ineligible}
    if expected == 6:
        assert barred == {("a", 0, "c1")}
        if backend != "greedy":
            assert plan.assignments[0].accelerator == "H20"
    if expected == 10:
        assert barred == set()


# -- capacity changes, max_gpus_per_job ---------------------------------------------------
@pytest.mark.parametrize(("capacity", "expected"), [
    # 8-GPU pool, 2 periods; jobs 5, 3, 2 of 8 GPUs x 1 period.
    ([], 8),                                            # one per period: 5 + 3
    ([{"from": 1, "gpus": 16}], 10),                    # 8 then 16: all three
    ([{"from": 1, "gpus": 0}], 5),                      # outage from period 1: one job
    # unsorted list: 0 GPUs from period 0, 24 from period 1 -> all three in period 1
    ([{"from": 1, "gpus": 24}, {"from": 0, "gpus": 0}], 10),
])
def test_capacity_changes(backend: str, capacity: list[dict[str, int]],
                          expected: float) -> None:
    inst = make([job("a", 5), job("b", 3), job("c", 2)], periods=2,
                pools=[pool(capacity=capacity)])
    optimum(inst, backend, expected)


def test_capacity_drop_under_a_running_job(backend: str) -> None:
    # 8-GPU pool dropping to 4 GPUs from period 1 (2 periods). L: 8 GPUs x 2 periods worth
    # 100 cannot run (period 1 has 4 GPUs); S: 4 GPUs x 1 period worth 1 can -> 1.
    inst = make([job("L", 100, periods=2), job("S", 1, gpus=4)], periods=2,
                pools=[pool(capacity=[{"from": 1, "gpus": 4}])])
    optimum(inst, backend, 1)


@pytest.mark.parametrize(("max_gpus", "expected"), [
    # 16-GPU pool, 2 periods. A: 16 GPUs x 1 period worth 10, or 8 GPUs x 2 periods worth 6;
    # B: 8 GPUs x 1 period worth 3.
    (None, 13),  # A's 16-GPU gang in one period, B in the other: 10 + 3
    (16, 13),    # the limit is inclusive
    (8, 9),      # A's 16-GPU option barred: A 8x2 next to B -> 6 + 3
    (4, 0),      # no 8-GPU gang either
])
def test_max_gpus_per_job(backend: str, max_gpus: int | None, expected: float) -> None:
    a = job("A", 10, gpus=16)
    a["options"].append({"accelerator": "H100", "gpus": 8, "periods": 2, "value": 6})
    extra = {} if max_gpus is None else {"max_gpus_per_job": max_gpus}
    optimum(make([a, job("B", 3)], periods=2, pools=[pool(gpus=16, **extra)]), backend,
            expected)


# -- mandatory jobs, objective weights ------------------------------------------------------
@pytest.mark.parametrize(("mandatory", "expected"), [
    # 8-GPU pool, 1 period; A worth 5 and M worth 1, 8 GPUs each: one runs.
    (False, 5),
    (True, 1),  # M must run
])
def test_mandatory_job(backend: str, mandatory: bool, expected: float) -> None:
    plan = optimum(make([job("A", 5), job("M", 1, mandatory=mandatory)]), backend, expected)
    if mandatory:
        assert ran(plan) == {"M"}


def test_mandatory_job_runs_at_a_loss(backend: str) -> None:
    # cost_weight 1, price 1, 1-hour period, 16-GPU pool: A (8 GPUs, value 20) nets 12,
    # mandatory M (8 GPUs, value 0) nets -8: 12 - 8 = 4.
    jobs = [job("A", 20), job("M", 0, mandatory=True)]
    plan = optimum(make(jobs, pools=[pool(gpus=16)], objective={"cost_weight": 1.0}),
                   backend, 4)
    assert "M" in ran(plan)


@pytest.mark.parametrize(("cost_weight", "expected", "accelerator"), [
    # One job worth 10: 8 H100 (price 3 -> cost 24) or 8 H20 (price 1 -> cost 8), 1-hour
    # period. Net value: 10 - w * cost.
    (0.0, 10, None),     # either option: 10
    (0.5, 6, "H20"),     # H100: 10 - 12 = -2; H20: 10 - 4 = 6
    (2.0, 0, None),      # H20: 10 - 16 < 0: better not to run -> 0
])
def test_cost_weight(backend: str, cost_weight: float, expected: float,
                     accelerator: str | None) -> None:
    a = job("a", 10)
    a["options"].append({"accelerator": "H20", "gpus": 8, "periods": 1})
    inst = make([a], pools=[pool(price=3.0), pool("H20", price=1.0)],
                objective={"cost_weight": cost_weight})
    plan = optimum(inst, backend, expected)
    if accelerator and backend != "greedy":
        assert [a.accelerator for a in plan.assignments] == [accelerator]
    if expected == 0:
        assert plan.assignments == ()


@pytest.mark.parametrize(("weights", "expected", "winner"), [
    # 8-GPU pool, 1 period: h (start-up hi) worth 3, l (start-up lo) worth 10, 8 GPUs each.
    ((1.0, 1.0), 10, "l"),   # equal weights: l
    ((2.0, 0.5), 6, "h"),    # 2 * 3 = 6 > 0.5 * 10 = 5: h
])
def test_startup_weight(backend: str, weights: tuple[float, float], expected: float,
                        winner: str) -> None:
    startups = [{"id": "hi", "weight": weights[0]}, {"id": "lo", "weight": weights[1]}]
    plan = optimum(make([job("h", 3, startup="hi"), job("l", 10, startup="lo")],
                        startups=startups), backend, expected)
    if backend != "greedy":
        assert ran(plan) == {winner}


# -- infeasible instances -------------------------------------------------------------------
@pytest.mark.parametrize("case", ["too_big", "two_mandatory", "credits", "dependency"])
def test_infeasible_instance_returns_status(request: pytest.FixtureRequest, backend: str,
                                            case: str) -> None:
    # Each instance has a mandatory job that no valid plan can run:
    # too_big: 16 GPUs in an 8-GPU pool; two_mandatory: two mandatory 8-GPU jobs, one
    # 8-GPU period; credits: the job costs 8 credits, the start-up holds 7; dependency: the
    # mandatory job must come after a job that can never run (no A100 pool).
    startups = [{"id": "s"}]
    if case == "too_big":
        jobs = [job("M", 1, gpus=16, mandatory=True)]
    elif case == "two_mandatory":
        jobs = [job("M", 1, mandatory=True), job("N", 1, mandatory=True)]
    elif case == "credits":
        jobs = [job("M", 1, mandatory=True)]
        startups = [{"id": "s", "credits": 7}]
    else:
        jobs = [job("P", 1, acc="A100"), job("M", 1, after=["P"], mandatory=True)]
    inst = make(jobs, periods=1, startups=startups)
    plan = solve_checked(inst, backend)  # a status, not an exception
    assert_infeasible(plan, backend)
    assert plan.status != SolveStatus.OPTIMAL

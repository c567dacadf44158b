"""Cross-field checks: references, duplicate ids, cycles in ``after``, windows.

Each check is exercised through ``instance_from_mapping`` (the way a file is loaded) and, for
robustness, ``semantic_issues`` directly on malformed mappings.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from typing import Any

import pytest

from gpualloc.models import Instance, InstanceError, InstanceWarning, instance_from_mapping
from gpualloc.models.checks import semantic_issues

BASE: dict[str, Any] = {
    "name": "checks",
    "horizon": {"periods": 10},
    "clusters": [
        {"id": "c1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 64, "price_per_gpu_hour": 2.0},
            {"accelerator": "H20", "gpus": 64, "price_per_gpu_hour": 1.0},
        ]},
        {"id": "c2", "region": "west", "country": "US", "pools": [
            {"accelerator": "H100", "gpus": 32, "price_per_gpu_hour": 3.0},
        ]},
    ],
    "startups": [{"id": "s1", "regions": ["east"]}, {"id": "s2"}],
    "jobs": [
        {"id": "a", "startup": "s1", "value": 1, "options": [
            {"accelerator": "H800", "gpus": 8, "periods": 2}]},
        {"id": "b", "startup": "s1", "value": 2, "after": ["a"], "options": [
            {"accelerator": "H20", "gpus": 8, "periods": 3}]},
        {"id": "c", "startup": "s2", "value": 3, "after": ["b"], "clusters": ["c2"],
         "options": [{"accelerator": "H100", "gpus": 8, "periods": 1}]},
        {"id": "d", "startup": "s2", "value": 3, "options": [
            {"accelerator": "H100", "gpus": 8, "periods": 1}]},
    ],
    "caps": [{"id": "k1", "metric": "gpus", "limit": 64, "clusters": ["c1"],
              "startups": ["s1"], "accelerators": ["H800"]}],
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InstanceError) as info:
        instance_from_mapping(data)
    assert all(i.severity == "error" for i in info.value.issues)
    return [str(i) for i in info.value.issues]


def warned(data: dict[str, Any]) -> tuple[Instance, list[str]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        inst = instance_from_mapping(data)
    assert all(issubclass(w.category, InstanceWarning) for w in record)
    return inst, [str(w.message) for w in record]


def test_base_is_clean() -> None:
    inst, messages = warned(base())
    assert messages == []
    assert semantic_issues(BASE) == []
    assert len(inst.jobs) == 4


# -- references ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path, value, expected", [
    (("jobs", 0, "startup"), "s11", "jobs[0].startup: unknown start-up 's11' (did you mean 's1'?)"),
    (("jobs", 0, "startup"), "zz", "jobs[0].startup: unknown start-up 'zz' (known: s1, s2)"),
    (("jobs", 1, "options", 0, "accelerator"), "H900",
     "jobs[1].options[0].accelerator: unknown accelerator 'H900' (did you mean 'H800'?)"),
    (("clusters", 1, "pools", 0, "accelerator"), "Quantum9",
     "clusters[1].pools[0].accelerator: unknown accelerator 'Quantum9'"),
    (("jobs", 2, "clusters"), ["c2", "c3"], "jobs[2].clusters[1]: unknown cluster 'c3' (known: "
                                             "c1, c2)"),
    (("jobs", 2, "after"), ["b", "e"], "jobs[2].after[1]: unknown job 'e' (known: a, b, c, d)"),
    (("caps", 0, "clusters"), ["c1", "hz"], "caps[0].clusters[1]: unknown cluster 'hz' (known: "
                                             "c1, c2)"),
    (("caps", 0, "startups"), ["s3"], "caps[0].startups[0]: unknown start-up 's3' (known: "
                                      "s1, s2)"),
    (("caps", 0, "accelerators"), ["H800", "A900"],
     "caps[0].accelerators[1]: unknown accelerator 'A900' (did you mean 'A800'?)"),
    (("caps", 0, "share_of"), {"clusters": ["c9"]},
     "caps[0].share_of.clusters[0]: unknown cluster 'c9' (known: c1, c2)"),
])
def test_unknown_references(path: tuple[Any, ...], value: Any, expected: str) -> None:
    data = base()
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    if path[-1] == "share_of":
        target["fraction"] = 0.5
    got = errors(data)
    assert expected in got, got


def test_references_resolve_against_instance_accelerators() -> None:
    data = base()
    data["accelerators"] = [{"name": "X1", "tpp": 100}]
    data["clusters"][0]["pools"].append({"accelerator": "X1", "gpus": 4,
                                         "price_per_gpu_hour": 1.0})
    data["jobs"][0]["options"].append({"accelerator": "X1", "gpus": 4, "periods": 1})
    inst, messages = warned(data)
    assert messages == []
    assert inst.export_class("X1") == "unrestricted"


def test_unknown_regions_and_countries_are_warnings() -> None:
    data = base()
    data["startups"][1]["regions"] = ["mars"]
    data["jobs"][3]["regions"] = ["west", "moon"]
    data["caps"][0]["countries"] = ["XX"]
    data["eligibility"] = [{"countries": ["YY"], "export_classes": ["3A090.a"]}]
    _, messages = warned(data)
    assert sorted(messages) == [
        "caps[0].countries[0]: unknown country 'XX' (known: CN, US)",
        "eligibility[0].countries[0]: unknown country 'YY' (known: CN, US)",
        "jobs[3].regions[1]: unknown region 'moon' (known: east, west)",
        "startups[1].regions[0]: unknown region 'mars' (known: east, west)",
    ]


def test_many_dangling_references_stay_fast_and_complete() -> None:
    data = base()
    data["jobs"] = [{"id": f"j{k}", "startup": f"x{k}", "after": [f"y{k}"], "options": [
        {"accelerator": f"Z{k}", "gpus": 1, "periods": 1}]} for k in range(3000)]
    issues = semantic_issues(data)
    assert len(issues) == 9000
    assert {i.location for i in issues} >= {"jobs[2999].startup", "jobs[2999].after[0]",
                                            "jobs[2999].options[0].accelerator"}


# -- duplicates ---------------------------------------------------------------------------------
def test_duplicate_ids() -> None:
    data = base()
    data["clusters"].append(copy.deepcopy(data["clusters"][1]))
    data["startups"].append({"id": "s1"})
    data["jobs"].append(copy.deepcopy(data["jobs"][3]))
    data["caps"].append(copy.deepcopy(data["caps"][0]))
    data["accelerators"] = [{"name": "H20", "memory_gb": 141}, {"name": "H20", "tpp": 1}]
    data["clusters"][0]["pools"].append({"accelerator": "H800", "gpus": 1,
                                         "price_per_gpu_hour": 1.0})
    assert errors(data) == [
        "accelerators[1].name: duplicate name 'H20' (first at accelerators[0])",
        "caps[1].id: duplicate id 'k1' (first at caps[0])",
        "clusters[0].pools[2].accelerator: second pool of 'H800' in this cluster (first at "
        "pools[0]); merge them into one pool",
        "clusters[2].id: duplicate id 'c2' (first at clusters[1])",
        "jobs[4].id: duplicate id 'd' (first at jobs[3])",
        "startups[2].id: duplicate id 's1' (first at startups[0])",
    ]


def test_same_accelerator_in_two_clusters_is_fine() -> None:
    data = base()
    data["clusters"][1]["pools"].append({"accelerator": "H800", "gpus": 1,
                                         "price_per_gpu_hour": 1.0})
    warned(data)


def test_duplicate_capacity_change_is_a_warning() -> None:
    data = base()
    data["clusters"][0]["pools"][0]["capacity"] = [{"from": 3, "gpus": 8}, {"from": 3, "gpus": 4},
                                                   {"from": 12, "gpus": 4}]
    _, messages = warned(data)
    assert sorted(messages) == [
        "clusters[0].pools[0].capacity[1].from: a second change from period 3 (first at "
        "capacity[0]): the later one wins",
        "clusters[0].pools[0].capacity[2].from: period 12 is past the horizon (10 periods): no "
        "effect",
    ]


# -- cycles -------------------------------------------------------------------------------------
def test_two_job_cycle_is_named() -> None:
    data = base()
    data["jobs"][0]["after"] = ["b"]
    assert errors(data) == ["jobs[0].after: dependency cycle: a -> b -> a (each job must end "
                            "before the next one starts)"]


def test_three_job_cycle_is_named_from_its_first_job() -> None:
    data = base()
    data["jobs"][0]["after"] = ["c"]
    assert errors(data) == ["jobs[0].after: dependency cycle: a -> b -> c -> a (each job must "
                            "end before the next one starts)"]


def test_separate_cycles_each_reported() -> None:
    data = base()
    data["jobs"][0]["after"] = ["b"]
    data["jobs"][3]["after"] = ["d2"]
    data["jobs"].append({"id": "d2", "startup": "s2", "after": ["d"], "options": [
        {"accelerator": "H100", "gpus": 1, "periods": 1}]})
    got = errors(data)
    assert got == [
        "jobs[0].after: dependency cycle: a -> b -> a (each job must end before the next one "
        "starts)",
        "jobs[3].after: dependency cycle: d -> d2 -> d (each job must end before the next one "
        "starts)",
    ]


def test_cycle_report_is_deterministic() -> None:
    rng = random.Random(3)
    names = [f"job{k}" for k in range(12)]
    for _ in range(5):
        data = base()
        order = names[:]
        rng.shuffle(order)  # the same ring, listed in another order
        ring = {n: names[(names.index(n) + 1) % len(names)] for n in names}
        data["jobs"] = [{"id": n, "startup": "s2", "after": [ring[n]], "options": [
            {"accelerator": "H100", "gpus": 1, "periods": 1}]} for n in order]
        got = errors(data)
        assert len(got) == 1 and "dependency cycle:" in got[0]
        first = order[0]
        assert got[0].split("dependency cycle: ")[1].startswith(first + " -> ")
        path = got[0].split("dependency cycle: ")[1].split(" (")[0].split(" -> ")
        assert path[0] == path[-1] and sorted(path[:-1]) == sorted(names)


def test_dependency_listed_twice_is_a_warning() -> None:
    data = base()
    data["jobs"][2]["after"] = ["b", "a", "b"]
    inst, messages = warned(data)
    assert messages == ["jobs[2].after[2]: 'b' is listed twice (first at after[0])"]
    assert inst.jobs[2].after == ("b", "a", "b")


def test_rolling_cap_longer_than_the_horizon_is_a_warning() -> None:
    data = base()
    data["caps"].append({"id": "r", "metric": "gpus", "per": "rolling", "length": 12,
                         "limit": 5})
    data["caps"].append({"id": "r2", "metric": "gpus", "per": "rolling", "length": 10,
                         "limit": 5})
    _, messages = warned(data)
    assert messages == ["caps[1].length: 12 periods is longer than the horizon (10): the cap "
                        "limits the whole horizon"]


def test_self_dependency() -> None:
    data = base()
    data["jobs"][1]["after"] = ["a", "b"]
    assert errors(data) == ["jobs[1].after[1]: a job cannot come after itself"]


# -- windows ------------------------------------------------------------------------------------
def test_deadline_past_the_horizon_and_other_problems_of_the_job() -> None:
    data = base()
    data["jobs"][1]["deadline"] = 11
    data["jobs"][1]["options"][0]["accelerator"] = "H900"
    assert errors(data) == [
        "jobs[1].deadline: deadline 11 is past the horizon (10 periods)",
        "jobs[1].options[0].accelerator: unknown accelerator 'H900' (did you mean 'H800'?)",
    ]


def test_deadline_at_the_horizon_is_fine() -> None:
    data = base()
    data["jobs"][1]["deadline"] = 10
    data["jobs"][1]["release"] = 7
    warned(data)


def test_release_at_the_horizon() -> None:
    data = base()
    data["jobs"][0]["release"] = 10
    assert errors(data) == ["jobs[0].release: release 10 is not before the horizon end (10)"]


def test_empty_window() -> None:
    data = base()
    data["jobs"][0]["release"] = 5
    data["jobs"][0]["deadline"] = 5
    assert errors(data) == ["jobs[0].deadline: deadline 5 is not after the release 5: no "
                            "option fits the window [5, 5)"]


def test_no_option_fits_is_an_error() -> None:
    data = base()
    data["jobs"][1]["release"] = 4
    data["jobs"][1]["deadline"] = 6
    data["jobs"][1]["options"].append({"accelerator": "H800", "gpus": 8, "periods": 5})
    assert errors(data) == ["jobs[1].options: no option fits the window [4, 6) of 2 periods: "
                            "the shortest takes 3 periods"]


def test_no_option_fits_the_default_window() -> None:
    data = base()
    data["jobs"][0]["options"][0]["periods"] = 11
    assert errors(data) == ["jobs[0].options: no option fits the window [0, 10) of 10 periods: "
                            "the shortest takes 11 periods"]


def test_one_option_that_never_fits_is_a_warning() -> None:
    data = base()
    data["jobs"][1]["release"] = 4
    data["jobs"][1]["deadline"] = 7
    data["jobs"][1]["options"].append({"accelerator": "H800", "gpus": 8, "periods": 5})
    inst, messages = warned(data)
    assert messages == ["jobs[1].options[1].periods: 5 periods never fit the window [4, 7): this "
                        "option is never used"]
    assert len(inst.jobs[1].options) == 2  # kept: the plan may simply never use it


def test_exact_fit_is_fine() -> None:
    data = base()
    data["jobs"][1]["release"] = 4
    data["jobs"][1]["deadline"] = 7
    _, messages = warned(data)
    assert messages == []


def test_a_job_needs_an_option() -> None:
    data = base()
    data["jobs"][0]["options"] = []
    assert errors(data) == ["jobs[0].options: a job needs at least one option"]


def test_cap_window_past_the_horizon() -> None:
    data = base()
    data["caps"].append({"id": "w", "metric": "gpus", "per": "window", "periods": [2, 10],
                         "limit": 5})
    assert errors(data) == ["caps[1].periods: window ends at period 10, past the horizon (last "
                            "period 9)"]


def test_invalid_window_numbers_do_not_add_noise() -> None:
    data = base()
    data["jobs"][0]["deadline"] = -1
    data["jobs"][1]["release"] = "soon"
    data["jobs"][2]["options"][0]["periods"] = 0
    assert errors(data) == [
        "jobs[0].deadline: Input should be greater than or equal to 0 (got -1)",
        "jobs[1].release: Input should be a valid integer (got 'soon')",
        "jobs[2].options[0].periods: Input should be greater than 0 (got 0)",
    ]


# -- accelerators -------------------------------------------------------------------------------
def test_new_accelerator_without_figures_is_a_warning_and_unrestricted() -> None:
    data = base()
    data["accelerators"] = [{"name": "Mystery", "memory_gb": 32},
                            {"name": "Known", "export_class": "3A090.b"},
                            {"name": "H20", "memory_gb": 141}]  # built-in: has a tpp
    inst, messages = warned(data)
    assert messages == ["accelerators[0]: no export_class and no tpp for 'Mystery': treated as "
                        "unrestricted"]
    assert inst.export_class("Mystery") == "unrestricted"
    assert inst.export_class("Known") == "3A090.b"


# -- robustness ---------------------------------------------------------------------------------
WEIRD: tuple[Any, ...] = (
    None, 0, -1, 1.5, math.nan, "x", "", [], {}, [None], [[1]], [{}], {"a": {}}, True,
    {"id": ["unhashable"]}, [{"id": {"a": 1}, "region": ["r"], "country": {"c": 1}}],
)
KEYS = ("name", "horizon", "regime", "accelerators", "clusters", "startups", "jobs", "caps",
        "eligibility", "objective")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", WEIRD, ids=repr)
def test_semantic_issues_never_raise(key: str, value: Any) -> None:
    data = base()
    data[key] = value
    issues = semantic_issues(data)
    assert all(i.message for i in issues)
    # nested weirdness too
    data = base()
    data["jobs"][0] = {"id": value, "startup": value, "release": value, "deadline": value,
                       "after": value, "options": value, "clusters": value}
    data["clusters"][0]["pools"][0] = {"accelerator": value, "capacity": value}
    data["caps"][0] = {"id": value, "periods": value, "share_of": value, "clusters": value}
    data["horizon"] = {"periods": value}
    semantic_issues(data)
    with pytest.raises(InstanceError):
        instance_from_mapping(data)


def test_semantic_issues_of_a_non_mapping() -> None:
    assert semantic_issues([1, 2]) == []  # type: ignore[arg-type]
    assert [str(i) for i in semantic_issues({})] == [
        "jobs: the instance has no jobs: every plan is empty"]  # a warning, nothing else

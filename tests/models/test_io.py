"""Loading and saving instance files: formats, round trips, every bad-input path.

The contract (DESIGN.md, "Bad input"): every problem in a file is reported at once, each with
its location, as one ``InstanceError``; nothing in a file is ever executed; hostile input
(alias bombs, deep nesting, huge files) is refused quickly with a clear message.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import pickle
import random
import stat
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpualloc.models import (
    Instance,
    InstanceError,
    InstanceWarning,
    Issue,
    instance_from_mapping,
    load_instance,
    parsing,
    save_instance,
)
from gpualloc.models import io as gio
from gpualloc.models.io import parse_text, read_mapping

# A small instance that uses every part of the format (with a date, unicode, a capacity
# change, an accelerator override and a new accelerator, caps with a share and a window,
# an eligibility rule, dependencies and restrictions).
FULL: dict[str, Any] = {
    "name": "portfolio-ünï",
    "horizon": {"periods": 8, "period_hours": 24.0, "start": "2025-01-06"},
    "accelerators": [
        {"name": "H20", "memory_gb": 141},
        {"name": "X1", "tpp": 3000, "die_mm2": 900, "datacenter": True, "memory_gb": 64},
    ],
    "clusters": [
        {"id": "hz-1", "region": "cn-east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 64, "price_per_gpu_hour": 2.1,
             "capacity": [{"from": 4, "gpus": 96}], "max_gpus_per_job": 32},
            {"accelerator": "H20", "gpus": 128, "price_per_gpu_hour": 0.9},
        ]},
        {"id": "sg-1", "region": "sg", "country": "SG", "pools": [
            {"accelerator": "X1", "gpus": 16, "price_per_gpu_hour": 1.5},
        ]},
    ],
    "startups": [
        {"id": "moonshot", "name": "Moonshot AI", "credits": 3.8e8, "weight": 1.5,
         "regions": ["cn-east", "sg"], "headquarters": "CN"},
        {"id": "zhipu", "credits": None, "restricted": ["3A090.a"]},
    ],
    "jobs": [
        {"id": "prep", "startup": "moonshot", "value": 5, "options": [
            {"accelerator": "H20", "gpus": 16, "periods": 1}]},
        {"id": "pretrain", "startup": "moonshot", "value": 100, "release": 1, "deadline": 8,
         "mandatory": False, "after": ["prep"], "clusters": ["hz-1"], "options": [
             {"accelerator": "H800", "gpus": 32, "periods": 4},
             {"accelerator": "H20", "gpus": 64, "periods": 6, "value": 90}]},
        {"id": "glm", "startup": "zhipu", "value": 7, "regions": ["sg"], "options": [
            {"accelerator": "X1", "gpus": 8, "periods": 2}]},
    ],
    "caps": [
        {"id": "restricted-cn", "metric": "tpp", "per": "period", "limit": 4.0e6,
         "export_classes": ["3A090.a"], "countries": ["CN"]},
        {"id": "h20-share", "metric": "gpus", "per": "window", "periods": [0, 3],
         "accelerators": ["H20"], "share_of": {"countries": ["CN"]}, "fraction": 0.5},
    ],
    "eligibility": [{"id": "no-a-in-sg", "export_classes": ["3A090.a"], "countries": ["SG"],
                     "headquarters": ["CN"]}],
    "objective": {"cost_weight": 0.001},
}


def full() -> dict[str, Any]:
    return copy.deepcopy(FULL)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def dump(data: Any, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def errors_of(call: Any, *args: Any) -> InstanceError:
    with pytest.raises(InstanceError) as info:
        call(*args)
    err = info.value
    assert err.issues, "an InstanceError must carry issues"
    assert all(i.message for i in err.issues)
    # no chained traceback: the report is the whole story
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__
    return err


def report(err: InstanceError) -> list[str]:
    return [str(i) for i in err.issues]


def load_errors(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> InstanceError:
    return errors_of(load_instance, write(tmp_path, name, text))


# -- good files -------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_load_valid_file(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, f"ok{suffix}", dump(full(), suffix))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file gives no warning
        inst = load_instance(path)
    assert isinstance(inst, Instance)
    assert inst.name == "portfolio-ünï"
    assert inst.horizon.start is not None and inst.horizon.start.isoformat() == "2025-01-06"
    assert [j.id for j in inst.jobs] == ["prep", "pretrain", "glm"]
    assert inst.clusters[0].pools[0].capacity[0].from_ == 4
    assert inst.catalog["H20"].memory_gb == 141


def test_yaml_and_json_of_the_same_data_load_equal(tmp_path: Path) -> None:
    a = load_instance(write(tmp_path, "a.yaml", dump(full(), ".yaml")))
    b = load_instance(write(tmp_path, "b.json", dump(full(), ".json")))
    assert a == b


def test_yaml_dates_and_bom_are_accepted(tmp_path: Path) -> None:
    text = dump(full(), ".yaml").replace("'2025-01-06'", "2025-01-06")
    assert "start: 2025-01-06" in text  # an unquoted YAML date
    inst = load_instance(write(tmp_path, "d.yaml", "\ufeff" + text))
    assert str(inst.horizon.start) == "2025-01-06"
    inst2 = load_instance(write(tmp_path, "d.json", "\ufeff" + dump(full(), ".json")))
    assert inst == inst2


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".JSON"])
def test_save_round_trip(tmp_path: Path, suffix: str) -> None:
    inst = instance_from_mapping(full())
    path = tmp_path / "sub" / f"saved{suffix}"
    save_instance(inst, path)
    again = load_instance(path)
    assert again == inst
    assert again.model_dump() == inst.model_dump()
    if suffix.lower() == ".json":
        json.loads(path.read_text(encoding="utf-8"))  # really JSON
    # saving the reloaded instance gives the same text: a fixed point
    save_instance(again, tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_text() == path.read_text()


def test_save_is_atomic_and_leaves_normal_permissions(tmp_path: Path) -> None:
    inst = instance_from_mapping(full())
    path = tmp_path / "inst.yaml"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    save_instance(inst, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its mode
    assert [p.name for p in tmp_path.iterdir()] == ["inst.yaml"]  # no temporary left
    fresh = tmp_path / "fresh.json"
    save_instance(inst, fresh)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644 & ~mask  # not the temp file's 0600


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
@pytest.mark.parametrize("umask, expected", [(0o002, 0o644), (0o077, 0o600), (0o022, 0o644)])
def test_new_files_get_0644_under_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        gio.atomic_write_text(tmp_path / "new.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == expected


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_no_setuid_setgid_or_sticky_bit_is_copied(tmp_path: Path) -> None:
    target = tmp_path / "tool"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o4755 | stat.S_ISGID | stat.S_ISVTX)
    link = tmp_path / "out.json"
    link.symlink_to(target)
    gio.atomic_write_text(link, "{}\n")  # the symlink is replaced by a new, plain file
    assert not link.is_symlink()
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(link.stat().st_mode) == 0o644 & ~mask
    assert stat.S_IMODE(target.stat().st_mode) & 0o7000 == 0o7000  # the target is untouched
    assert target.read_text() == "#!/bin/sh\n"
    gio.atomic_write_text(target, "{}\n")  # an existing file keeps rwx, never the rest
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes
    done = threading.Event()

    def writer() -> None:  # feeds a reader if one ever opens it (so a bad loader cannot hang)
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads
                done.wait(0.01)
                continue
            os.write(fd, b"a: 1\n")
            os.close(fd)
            return

    feeder = threading.Thread(target=writer, daemon=True)
    feeder.start()
    try:
        err = errors_of(load_instance, fifo)
    finally:
        done.set()
        feeder.join()
    assert err.source == str(fifo)
    assert report(err) == ["cannot read instance file: it is a FIFO (named pipe), not a "
                           "regular file"]


@pytest.mark.parametrize("what, where", [("a directory", "."), ("a character device",
                                                               "/dev/null")])
def test_other_special_files_are_refused(tmp_path: Path, what: str, where: str) -> None:
    path = tmp_path if where == "." else Path(where)
    if not path.exists():
        pytest.skip(f"no {where}")
    err = errors_of(gio.read_mapping, path, "plan")
    assert report(err) == [f"cannot read plan file: it is {what}, not a regular file"]


def test_a_file_swapped_for_a_fifo_after_the_stat_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "x.yaml", "a: 1\n")
    real_fstat = os.fstat

    def fstat(fd: int) -> Any:  # what fstat would say had a FIFO replaced the file
        st = real_fstat(fd)
        return os.stat_result((stat.S_IFIFO | 0o644, *tuple(st)[1:10]))

    monkeypatch.setattr(gio.os, "fstat", fstat)
    err = errors_of(load_instance, path)
    assert report(err) == ["cannot read instance file: it is a FIFO (named pipe), not a "
                           "regular file"]


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inst.yaml"
    path.write_text("old", encoding="utf-8")

    def boom(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gio.os, "replace", boom)
    with pytest.raises(OSError):
        save_instance(instance_from_mapping(full()), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["inst.yaml"]


def _strategies() -> Any:
    path = Path(__file__).resolve().parents[1] / "strategies.py"
    spec = importlib.util.spec_from_file_location("_gpualloc_test_strategies", path)
    if spec is None or spec.loader is None or not path.exists():
        pytest.skip("tests/strategies.py not available")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_random_instances_round_trip(tmp_path: Path, seed: int, suffix: str) -> None:
    inst = _strategies().random_instance(seed)
    path = tmp_path / f"r{suffix}"
    save_instance(inst, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InstanceWarning)  # random windows: unusable options
        assert load_instance(path) == inst


# -- one report with every problem --------------------------------------------------------------
BAD_YAML = """\
name: t
horizon: {periods: 4}
clusters:
  - id: c1
    region: r1
    country: CN
    pools:
      - {accelerator: H800, gpus: 8, price_per_gpu_hour: 2.0}
      - {accelerator: H800, gpus: 4, price_per_gpu_hour: 1.0}
      - {accelerator: B300, gpus: 4, price_per_gpu_hour: -1}
  - {id: c1, region: r1, country: CN}
startups:
  - {id: s1, credits: .nan}
  - {id: s1, weight: .inf}
jobs:
  - {id: j1, startup: s1, value: 10, options: [{accelerator: H800, gpus: 8, periods: 2}]}
  - {id: j2, startup: s1, value: 5, after: [j1],
     options: [{accelerator: H900, gpus: 4, periods: 5}]}
  - {id: j3, startup: s9, value: "x", after: [j3, j4],
     options: [{accelerator: H800, gpus: 0, periods: 1}]}
  - {id: j4, startup: s1, deadline: 9, deadlne: 3,
     options: [{accelerator: H800, gpus: 2.5, periods: "4"}]}
  - {id: j5, startup: s1, after: [j6], options: [{accelerator: H800, gpus: true, periods: 1}]}
  - {id: j6, startup: s1, after: [j5], clusters: [c2],
     options: [{accelerator: H800, gpus: 1, periods: 1}]}
caps:
  - {id: k, metric: tpp, limit: 100, clusters: [c3], startups: [s7], accelerators: [Z1]}
  - {id: k, metric: flops, limit: 100}
"""


def test_every_problem_in_one_report(tmp_path: Path) -> None:
    err = load_errors(tmp_path, BAD_YAML)
    assert err.source is not None and err.source.endswith("bad.yaml")
    got = report(err)
    expected = [
        "caps[0].accelerators[0]: unknown accelerator 'Z1'",
        "caps[0].clusters[0]: unknown cluster 'c3' (known: c1)",
        "caps[0].startups[0]: unknown start-up 's7' (known: s1)",
        "caps[1].id: duplicate id 'k' (first at caps[0])",
        "caps[1].metric: Input should be 'gpus', 'tpp' or 'gpu_hours' (got 'flops')",
        "clusters[0].pools[1].accelerator: second pool of 'H800' in this cluster (first at "
        "pools[0]); merge them into one pool",
        "clusters[0].pools[2].accelerator: unknown accelerator 'B300' (did you mean 'B200'?)",
        "clusters[0].pools[2].price_per_gpu_hour: Input should be greater than or equal to 0 "
        "(got -1)",
        "clusters[1].id: duplicate id 'c1' (first at clusters[0])",
        "jobs[1].options: no option fits the window [0, 4) of 4 periods: the shortest takes 5 "
        "periods",
        "jobs[1].options[0].accelerator: unknown accelerator 'H900' (did you mean 'H800'?)",
        "jobs[2].after[0]: a job cannot come after itself",
        "jobs[2].options[0].gpus: Input should be greater than 0 (got 0)",
        "jobs[2].startup: unknown start-up 's9' (known: s1)",
        "jobs[2].value: Input should be a valid number (got 'x')",
        "jobs[3].deadline: deadline 9 is past the horizon (4 periods)",
        "jobs[3].deadlne: unknown key (did you mean 'deadline'?)",
        "jobs[3].options[0].gpus: Input should be a valid integer (got 2.5)",
        "jobs[3].options[0].periods: Input should be a valid integer (got '4'); write numbers "
        "without quotes",
        "jobs[4].after: dependency cycle: j5 -> j6 -> j5 (each job must end before the next "
        "one starts)",
        "jobs[4].options[0].gpus: Input should be a valid integer (got True)",
        "jobs[5].clusters[0]: unknown cluster 'c2' (known: c1)",
        "startups[0].credits: Input should be a finite number (got nan)",
        "startups[1].id: duplicate id 's1' (first at startups[0])",
        "startups[1].weight: Input should be a finite number (got inf)",
    ]
    for line in expected:
        assert line in got, f"missing: {line}\nreport:\n" + "\n".join(got)
    # j3's after[1] names j4, which exists: no false alarm
    assert not any(g.startswith("jobs[2].after[1]") for g in got)
    assert len(got) == len(expected), "\n".join(sorted(set(got) - set(expected)))
    # the message lists every problem, one per line, sorted by location (jobs[10] after [9])
    text = str(err)
    assert text.splitlines()[0].endswith(f"{len(expected)} problems")
    assert all(line in text for line in expected)


def test_report_order_is_natural() -> None:
    issues = [Issue("jobs[10].id", "b"), Issue("jobs[9].id", "a"), Issue("", "file"),
              Issue("jobs[9].after", "c")]
    err = InstanceError(issues)
    assert [i.location for i in err.issues] == ["", "jobs[9].after", "jobs[9].id",
                                                "jobs[10].id"]
    # odd locations (unicode digits, quoted keys) sort without failing
    InstanceError([Issue("²", "x"), Issue("٣", "y"), Issue("[3]", "z"), Issue("a", "w")])


def test_duplicate_issues_are_reported_once() -> None:
    err = InstanceError([Issue("a", "x"), Issue("a", "x")])
    assert len(err.issues) == 1
    assert str(err).splitlines()[0] == "1 problem"


def test_instance_error_pickles() -> None:
    err = InstanceError([Issue("jobs[0].id", "bad"), Issue("", "file")], "f.yaml")
    back = pickle.loads(pickle.dumps(err))
    assert back.issues == err.issues and back.source == "f.yaml" and str(back) == str(err)


def test_instance_error_is_not_a_value_error() -> None:
    assert not issubclass(InstanceError, ValueError | TypeError)


# -- numbers and types --------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["gpus", "periods"])
@pytest.mark.parametrize("value, shown", [
    (2.5, "Input should be a valid integer (got 2.5)"),
    ("4", "Input should be a valid integer (got '4'); write numbers without quotes"),
    (True, "Input should be a valid integer (got True)"),
    (0, "Input should be greater than 0 (got 0)"),
    (-3, "Input should be greater than 0 (got -3)"),
    (None, "Input should be a valid integer (got None)"),
    ([4], "Input should be a valid integer (got a list)"),
])
def test_option_gpus_and_periods_must_be_positive_integers(field: str, value: Any,
                                                            shown: str) -> None:
    data = full()
    data["jobs"][0]["options"][0][field] = value
    err = errors_of(instance_from_mapping, data)
    assert f"jobs[0].options[0].{field}: {shown}" in report(err)


@pytest.mark.parametrize("suffix, literal, shown", [
    (".yaml", ".nan", "nan"), (".yaml", ".NaN", "nan"), (".yaml", ".inf", "inf"),
    (".yaml", "-.inf", "-inf"), (".yaml", "+.Inf", "inf"),
    (".json", "NaN", "nan"), (".json", "Infinity", "inf"), (".json", "-Infinity", "-inf"),
    (".json", "1e999", "inf"),
])
def test_non_finite_numbers_are_errors(tmp_path: Path, suffix: str, literal: str,
                                       shown: str) -> None:
    text = dump(full(), suffix).replace("0.001", literal)  # objective.cost_weight
    assert literal in text
    err = load_errors(tmp_path, text, f"nf{suffix}")
    assert f"objective.cost_weight: Input should be a finite number (got {shown})" \
        in report(err)


@pytest.mark.parametrize("path, value, message", [
    (("startups", 0, "credits"), -5, "Input should be greater than or equal to 0 (got -5)"),
    (("startups", 0, "weight"), "heavy", "Input should be a valid number (got 'heavy')"),
    (("startups", 0, "weight"), "1.5", "Input should be a valid number (got '1.5'); write "
                                       "numbers without quotes"),
    (("jobs", 0, "value"), True, "Input should be a valid number (got True)"),
    (("jobs", 0, "value"), 10**500, "Input is too large to be a number (got a 501-digit "
                                    "number)"),
    (("jobs", 0, "value"), 10**20, "Input should be less than or equal to 1000000000000000 "
                                   "(got 100000000000000000000)"),
    (("clusters", 0, "pools", 0, "gpus"), -1, "Input should be greater than or equal to 0 "
                                              "(got -1)"),
    (("horizon", "periods"), 0, "Input should be greater than 0 (got 0)"),
    (("horizon", "period_hours"), "week", "Input should be a valid number (got 'week')"),
    (("jobs", 0, "release"), -1, "Input should be greater than or equal to 0 (got -1)"),
    (("jobs", 0, "mandatory"), "perhaps", "Input should be a valid boolean (got 'perhaps')"),
    (("jobs", 0, "mandatory"), "yes", "Input should be a valid boolean (got 'yes')"),
    (("jobs",), 5, "Input should be a list (got 5)"),
    (("jobs", 0), "j", "Input should be a mapping (key: value pairs) (got 'j')"),
    (("caps", 0, "periods"), [0, 1, 2], "Tuple should have at most 2 items after validation, "
                                        "not 3 (got a list)"),
    (("name",), "", "String should have at least 1 character (got '')"),
])
def test_type_and_range_errors_are_located(path: tuple[Any, ...], value: Any,
                                           message: str) -> None:
    data = full()
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    err = errors_of(instance_from_mapping, data)
    where = gio.location(path)
    assert f"{where}: {message}" in report(err), report(err)


def test_missing_and_unknown_keys() -> None:
    data = full()
    del data["clusters"]
    del data["jobs"][1]["startup"]
    data["jobs"][0]["colour"] = "red"
    data["jobs"][0]["options"][0]["gpu"] = 3
    data["jobs"][0]["options"][0]["my key"] = 3
    data["horizn"] = {}
    got = report(errors_of(instance_from_mapping, data))
    assert "clusters: missing required key" in got
    assert "jobs[1].startup: missing required key" in got
    assert "horizn: unknown key (did you mean 'horizon'?)" in got
    assert "jobs[0].options[0].gpu: unknown key (did you mean 'gpus'?)" in got
    assert "jobs[0].options[0]['my key']: unknown key (expected one of: accelerator, gpus, " \
        "periods, value)" in got
    assert any(g.startswith("jobs[0].colour: unknown key (expected one of: id, startup,")
               for g in got)
    # with clusters missing, the pools' and jobs' references to them are still checked
    assert "jobs[1].clusters[0]: unknown cluster 'hz-1' (none are defined)" in got


def test_type_errors_and_reference_errors_together() -> None:
    data = full()
    data["jobs"][0]["value"] = "lots"  # a type error: the schema fails ...
    data["jobs"][1]["after"] = ["perp"]  # ... and a reference error: both are reported
    data["jobs"][2]["options"][0]["accelerator"] = "X11"
    got = report(errors_of(instance_from_mapping, data))
    assert got == [
        "jobs[0].value: Input should be a valid number (got 'lots')",
        "jobs[1].after[0]: unknown job 'perp' (did you mean 'prep'?)",
        "jobs[2].options[0].accelerator: unknown accelerator 'X11' (did you mean 'X1'?)",
    ]


def test_model_level_rule_message() -> None:
    data = full()
    del data["caps"][1]["fraction"]
    got = report(errors_of(instance_from_mapping, data))
    assert got == ["caps[1]: share_of and fraction go together"]


def test_top_level_must_be_a_mapping_for_the_library_too() -> None:
    err = errors_of(instance_from_mapping, [1, 2])
    assert report(err) == ["the top level should be a mapping (key: value pairs) (got a list)"]


def test_instance_from_mapping_passes_source_and_prior_issues() -> None:
    prior = [Issue("x", "parsed badly"), Issue("y", "just advice", "warning")]
    err = errors_of(lambda: instance_from_mapping(full(), "f.yaml", issues=prior))
    assert err.source == "f.yaml"
    assert report(err) == ["x: parsed badly"]  # only errors stop the load
    with pytest.warns(InstanceWarning, match="^f.yaml: y: just advice$"):
        instance_from_mapping(full(), "f.yaml", issues=prior[1:])


# -- malformed text -----------------------------------------------------------------------------
@pytest.fixture(params=["libyaml", "python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both YAML parsers (libyaml where PyYAML has it, and the pure-Python fallback)."""
    if request.param == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(parsing, "USE_LIBYAML", request.param == "libyaml")
    return request.param


# (text, location, message start: one for both parsers, or (pure Python, libyaml))
@pytest.mark.parametrize("text, where, start", [
    ("name: t\nhorizon: {periods: 4\nclusters: []\n", "line 3, column 9",
     ("malformed YAML: expected ',' or '}', but got ':'",
      "malformed YAML: did not find expected ',' or '}'")),
    ("name: t\n  horizon: 4\n", "line 2, column 10",
     ("malformed YAML: mapping values are not allowed here",
      "malformed YAML: mapping values are not allowed in this context")),
    ("name: t\njobs:\n\t- x\n", "line 3, column 1",
     ("malformed YAML: found character '\\t' that cannot start any token",
      "malformed YAML: found character that cannot start any token")),
    ("name: 'unterminated\n", "line 2, column 1", "malformed YAML: found unexpected end of "
     "stream"),
    ("a: 1\n---\nb: 2\n", "line 2, column 1", "malformed YAML: but found another document"),
    ("? [a, b]\n: c\n", "line 1, column 3", "malformed YAML: found unhashable key"),
    ("start: 2025-13-45\n", "line 1, column 8", "malformed YAML: cannot read '2025-13-45': "
     "month must be in 1..12"),
    ("n: " + "9" * 5000 + "\n", "line 1, column 4", "malformed YAML: cannot read '999"),
    ("name: t\x00\n", "line 1, column 8", "character U+0000 is not allowed in YAML"),
    ("näme: t\x00\n", "line 1, column 8", "character U+0000 is not allowed in YAML"),
])
def test_malformed_yaml_has_line_and_column(tmp_path: Path, text: str, where: str,
                                            start: str | tuple[str, str],
                                            yaml_parser: str) -> None:
    err = load_errors(tmp_path, text)
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert issue.location == where, str(issue)
    if isinstance(start, tuple):
        start = start[yaml_parser == "libyaml"]
    assert issue.message.startswith(start), str(issue)


@pytest.mark.parametrize("text, where, start", [
    ('{"name": "t",\n "horizon": {"periods": 4},}', "line 2, column 28",
     "malformed JSON: Expecting property name enclosed in double quotes"),
    ('{"name": "t"\n "jobs": []}', "line 2, column 2", "malformed JSON: Expecting ',' delimiter"),
    ("{'name': 't'}", "line 1, column 2", "malformed JSON: Expecting property name"),
    ('{"a": 1} x', "line 1, column 10", "malformed JSON: Extra data"),
    ('{"n": ' + "9" * 5000 + "}", "line 1, column 7", "malformed JSON: a number with too many "
     "digits"),
    ('{"a": tru}', "line 1, column 7", "malformed JSON: Expecting value"),
])
def test_malformed_json_has_line_and_column(tmp_path: Path, text: str, where: str,
                                            start: str) -> None:
    err = load_errors(tmp_path, text, "bad.json")
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert issue.location == where, str(issue)
    assert issue.message.startswith(start), str(issue)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_duplicate_keys_are_errors(tmp_path: Path, suffix: str) -> None:
    if suffix == ".yaml":
        text = dump(full(), suffix).replace("name: portfolio-ünï\n",
                                            "name: portfolio-ünï\nname: other\n", 1)
        text = text.replace("  periods: 8\n", "  periods: 8\n  periods: 9\n", 1)
    else:
        text = dump(full(), suffix).replace('"name": "portfolio-\\u00fcn\\u00ef",',
                                            '"name": "a", "name": "b",', 1)
        text = text.replace('"periods": 8,', '"periods": 8, "periods": 9,', 1)
    err = load_errors(tmp_path, text, f"dup{suffix}")
    got = report(err)
    assert len(got) == 2, got
    assert got[0].startswith("horizon.periods: duplicate key 'periods'")
    assert got[1].startswith("name: duplicate key 'name'")
    assert all(g.endswith("only the last would count") for g in got)
    if suffix == ".yaml":
        assert "name: duplicate key 'name' at line 2, column 1 (first at line 1, column 1)" \
            in got[1]
    with pytest.raises(InstanceError):
        read_mapping(tmp_path / f"dup{suffix}")


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    data = full()
    text = dump(data, ".yaml").replace(
        "pools:\n  - accelerator: H800", "pools:\n  - &h800\n    accelerator: H800", 1)
    text = text.replace("  - accelerator: X1\n    gpus: 16\n    price_per_gpu_hour: 1.5",
                        "  - <<: *h800\n    accelerator: X1\n    gpus: 16\n"
                        "    price_per_gpu_hour: 1.5\n    capacity: []\n"
                        "    max_gpus_per_job: 16", 1)
    assert "<<: *h800" in text
    inst = load_instance(write(tmp_path, "merge.yaml", text))
    assert inst.clusters[1].pools[0].accelerator == "X1"


# -- whole-file problems ------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, message", [
    ("e.yaml", "", "the file is empty"),
    ("e.json", "", "the file is empty"),
    ("w.yaml", "  \n\n\t\n", "the file is empty"),
    ("c.yaml", "# only a comment\n", "the file holds no instance (only comments or null)"),
    ("n.yaml", "null\n", "the file holds no instance (only comments or null)"),
    ("n.json", "null", "the file holds no instance (only comments or null)"),
    ("l.yaml", "- a\n- b\n", "the instance must be a mapping (key: value pairs) at the top "
                             "level, got a list"),
    ("l.json", "[1, 2]", "the instance must be a mapping (key: value pairs) at the top level, "
                         "got a list"),
    ("s.yaml", "just words\n", "the instance must be a mapping (key: value pairs) at the top "
                               "level, got a string"),
    ("i.json", "42", "the instance must be a mapping (key: value pairs) at the top level, got "
                     "a number"),
])
def test_file_without_a_mapping(tmp_path: Path, name: str, text: str, message: str) -> None:
    err = load_errors(tmp_path, text, name)
    assert report(err) == [message]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    err = errors_of(load_instance, tmp_path / "nope.yaml")
    assert report(err) == ["cannot read instance file: No such file or directory"]
    assert err.source == str(tmp_path / "nope.yaml")
    err = errors_of(load_instance, tmp_path)
    assert len(err.issues) == 1
    assert err.issues[0].message.startswith("cannot read instance file:")


@pytest.mark.parametrize("raw, where, extra", [
    (b"name: caf\xe9\n", "line 1, column 10", "(byte 0xe9)"),
    (b"name: t\nhorizon: {periods: 4}\n# \xff\xfe\n", "line 3, column 3", "(byte 0xff)"),
    ("name: t\n".encode("utf-16"), "line 1, column 1", "it looks like UTF-16"),
])
def test_non_utf8_file(tmp_path: Path, raw: bytes, where: str, extra: str) -> None:
    err = load_errors(tmp_path, raw)
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert issue.location == where
    assert issue.message.startswith("file is not UTF-8 text") and extra in issue.message


def test_size_limit_from_the_environment(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "big.yaml", dump(full(), ".yaml") + "#" * 4000 + "\n")
    load_instance(path)  # fine under the default limit
    monkeypatch.setenv("GPUALLOC_MAX_INPUT_MB", "0.001")  # 1,048 bytes, read on every call
    err = errors_of(load_instance, path)
    assert len(err.issues) == 1
    message = err.issues[0].message
    assert message.startswith("file is ") and "over the 1.0 KiB input limit" in message
    assert "GPUALLOC_MAX_INPUT_MB" in message


def test_size_limit_is_checked_before_reading(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:  # a sparse 3 GiB file: reading it would take long
        fh.truncate(3 * 2**30)
    reads: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def fileno(self) -> int:
            return self.fh.fileno()

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            return self.fh.read(n)

    monkeypatch.setattr(gio, "open", lambda *a, **k: Spy(real_open(*a, **k)), raising=False)
    err = errors_of(load_instance, path)
    assert reads == []
    assert report(err) == ["file is 3.0 GiB, over the 24.0 MiB input limit (set "
                           "GPUALLOC_MAX_INPUT_MB to raise it)"]


def test_size_limit_holds_when_the_size_is_unknown(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a pipe or special file reports size 0: the reader stops one byte past the limit
    path = write(tmp_path, "p.yaml", "a: " + "x" * 5000)
    monkeypatch.setenv("GPUALLOC_MAX_INPUT_MB", "0.001")
    real_fstat = os.fstat

    def fstat(fd: int) -> Any:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid,
                               st.st_gid, 0, st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(gio.os, "fstat", fstat)
    err = errors_of(load_instance, path)
    assert report(err) == ["file is over the 1.0 KiB input limit (set GPUALLOC_MAX_INPUT_MB "
                           "to raise it)"]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf"])
def test_bad_size_limit_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                value: str) -> None:
    monkeypatch.setenv("GPUALLOC_MAX_INPUT_MB", value)
    err = errors_of(load_instance, write(tmp_path, "x.yaml", "a: 1\n"))
    assert report(err) == [f"GPUALLOC_MAX_INPUT_MB={value!r} is not a positive number of MiB"]


# -- nothing is executed; hostile YAML ----------------------------------------------------------
@pytest.mark.parametrize("tag", [
    "!!python/object/apply:builtins.open",
    "!!python/object/new:builtins.open",
    "!!python/object:builtins.object",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple",
    "!custom",
])
def test_tags_are_refused_and_never_executed(tmp_path: Path, tag: str) -> None:
    target = tmp_path / "created-by-yaml"
    text = (f"name: t\nhorizon: {{periods: 4}}\n"
            f"clusters: {tag} [{json.dumps(str(target))}, 'w']\n")
    err = load_errors(tmp_path, text)
    assert not target.exists()
    assert len(err.issues) == 1
    issue = err.issues[0]
    assert issue.location == "line 3, column 11"
    shown = tag.split(":")[0] if tag.startswith("!!python/object") else tag
    assert issue.message.startswith(f"tag '{shown}")
    assert issue.message.endswith("is not allowed: instance files hold plain data only, "
                                  "nothing in them is executed")


def test_billion_laughs_is_refused_quickly(tmp_path: Path, yaml_parser: str) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 10):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    err = load_errors(tmp_path, "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 5  # ~1e9 nodes if expanded: this would never end
    assert len(err.issues) == 1
    assert "refusing a possible alias bomb" in err.issues[0].message
    assert "billion laughs" in err.issues[0].message


def test_many_aliases_are_fine(yaml_parser: str) -> None:
    # 15,000 alias uses: a big instance sharing a few anchors (refused before as "more than
    # 10000 aliases"); the bound is on what they expand to, not on their number
    data = parse_text("a: &a [1, 2]\nb: [" + ", ".join(["*a"] * 15_000) + "]\n", "x.yaml")
    assert len(data["b"]) == 15_000 and data["b"][-1] == [1, 2]


def test_an_alias_bomb_of_characters_is_refused(tmp_path: Path, yaml_parser: str) -> None:
    # few nodes, but each alias repeats a 60,000-character string: 120 M characters
    text = f"a: &a {'x' * 60_000}\nb: [" + ", ".join(["*a"] * 2_000) + "]\n"
    err = load_errors(tmp_path, text)
    assert len(err.issues) == 1
    assert err.issues[0].message == (f"aliases expand the document by more than "
                                     f"{gio.MAX_ALIAS_CHARS:,} characters: refusing a possible "
                                     "alias bomb")
    assert err.issues[0].location.startswith("line 2, column ")


def test_an_over_long_scalar_is_refused_before_it_is_read(tmp_path: Path,
                                                         yaml_parser: str) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("name: t\nnote: " + "y" * 20_000_000 + "\nhorizon: {periods: 4}\n")
    err = errors_of(load_instance, path)
    assert len(err.issues) == 1
    issue = err.issues[0]
    if yaml_parser == "libyaml":  # the composer sees the scalar's length before building it
        assert str(issue) == (f"line 2, column 7: a scalar of 20,000,000 characters, over the "
                              f"limit of {gio.MAX_SCALAR_CHARS:,}")
    else:  # the pure-Python scanner would take seconds: the raw lines are checked first
        assert str(issue) == (f"line 2, column 1: a scalar longer than {gio.MAX_SCALAR_CHARS:,} "
                              "characters")


def test_a_long_folded_scalar_is_refused(tmp_path: Path, yaml_parser: str) -> None:
    # short lines, one long scalar: the composer's check catches it in both parsers
    text = "name: t\nnote: >\n" + "  word word word\n" * 10_000
    err = load_errors(tmp_path, text)
    assert [i.location for i in err.issues] == ["line 2, column 7"]
    assert err.issues[0].message.startswith("a scalar of 150,000 characters, over the limit")


def test_modest_aliases_are_fine(tmp_path: Path, yaml_parser: str) -> None:
    text = dump(full(), ".yaml").replace(
        "  options:\n  - accelerator: H20\n    gpus: 16\n    periods: 1",
        "  options: &opts\n  - accelerator: H20\n    gpus: 16\n    periods: 1", 1)
    text = text.replace("  options:\n  - accelerator: X1\n    gpus: 8\n    periods: 2",
                        "  options: *opts", 1)
    assert "*opts" in text
    inst = load_instance(write(tmp_path, "alias.yaml", text))
    assert inst.jobs[2].options == inst.jobs[0].options


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: [1, *a]}\n"])
def test_recursive_alias(tmp_path: Path, text: str, yaml_parser: str) -> None:
    err = load_errors(tmp_path, text)
    assert len(err.issues) == 1
    assert err.issues[0].location.startswith("line 1, column ")
    assert err.issues[0].message == ("an alias refers to a node that contains it (recursive "
                                     "data is not allowed)")


def test_alias_nesting_past_the_depth_limit(tmp_path: Path, yaml_parser: str) -> None:
    # each level nests the previous one through an alias: shallow text, deep data
    lines = ["l0: &l0 [1]"] + [f"l{k}: &l{k} [[[[*l{k - 1}]]]]" for k in range(1, 20)]
    err = load_errors(tmp_path, "\n".join(lines) + "\n")
    assert len(err.issues) == 1
    assert err.issues[0].message == (f"nested deeper than {gio.MAX_DEPTH} levels once aliases "
                                     "are expanded")


@pytest.mark.parametrize("name, text", [
    ("flow.yaml", "a: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("flowmap.yaml", "a: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
    ("block.yaml", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x\n"),
    ("deep.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("some.json", '{"a": ' + "[" * 100 + "]" * 100 + "}"),
])
def test_deep_nesting_is_refused(tmp_path: Path, name: str, text: str, yaml_parser: str) -> None:
    started = time.perf_counter()
    err = load_errors(tmp_path, text, name)
    assert time.perf_counter() - started < 5
    assert len(err.issues) == 1
    assert err.issues[0].message == f"nested deeper than {gio.MAX_DEPTH} levels"


def test_nesting_within_the_limit_is_parsed(tmp_path: Path) -> None:
    deep = "[" * (gio.MAX_DEPTH - 1) + "]" * (gio.MAX_DEPTH - 1)
    assert parse_text(f"a: {deep}\n", "x.yaml") is not None
    assert parse_text(f'{{"a": {deep}}}', "x.json") is not None


def test_parse_text_chooses_the_parser_by_suffix() -> None:
    assert math.isnan(parse_text('{"a": NaN}', "x.JSON")["a"])
    with pytest.raises(InstanceError):
        parse_text("a: 1", "x.json")  # YAML is not JSON
    assert parse_text("a: 1", "x.txt") == {"a": 1}


# -- warnings -----------------------------------------------------------------------------------
def test_warnings_are_instance_warnings_pointing_at_the_caller(tmp_path: Path) -> None:
    data = full()
    data["accelerators"].append({"name": "Mystery", "memory_gb": 32})
    data["clusters"][1]["pools"].append({"accelerator": "Mystery", "gpus": 4,
                                         "price_per_gpu_hour": 1.0})
    data["jobs"][1]["options"].append({"accelerator": "H800", "gpus": 8, "periods": 8})
    path = write(tmp_path, "w.yaml", dump(data, ".yaml"))
    with pytest.warns(InstanceWarning) as record:
        inst = load_instance(path)
    texts = sorted(str(w.message) for w in record)
    assert texts == [
        f"{path}: accelerators[2]: no export_class and no tpp for 'Mystery': treated as "
        "unrestricted",
        f"{path}: jobs[1].options[2].periods: 8 periods never fit the window [1, 8): this "
        "option is never used",
    ]
    assert all(w.filename == __file__ for w in record)  # not somewhere inside the loader
    assert inst.export_class("Mystery") == "unrestricted"


# -- robustness: random mutations never give anything but an Instance or an InstanceError ------
JUNK: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2.5, -0.0, float("nan"), float("inf"), float("-inf"),
    10**30, 10**400, 10**5000, 1e308, "", "x", "4", "H900", "ünïcødé ☃ 𝔘", "\u202e", "²",
    "a" * 500, [], [1, "a"], {}, {"a": 1}, {7: 1}, ["prep"], [None], [[[]]],
)


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*path, i))
    return out


def _mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 4)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        roll = rng.random()
        if roll < 0.3:
            del parent[path[-1]]  # delete a key or an item
        elif roll < 0.85:
            parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))  # swap in another type
        elif isinstance(parent, dict):
            parent[rng.choice(["zzz", "ïd", "deadlne", "²", 7])] = rng.choice(JUNK)
        else:
            parent.append(copy.deepcopy(rng.choice(JUNK)))
    return data


def test_random_mutations_give_an_instance_or_an_instance_error() -> None:
    rng = random.Random(20250106)
    outcomes = {"instance": 0, "error": 0}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InstanceWarning)
        for _ in range(200):
            data = _mutate(FULL, rng)
            try:
                result = instance_from_mapping(data)
            except InstanceError as e:
                outcomes["error"] += 1
                assert e.issues, data
                for issue in e.issues:
                    assert isinstance(issue, Issue) and issue.message.strip(), e
                    assert issue.severity == "error"
                    assert not issue.message.startswith("cannot validate the instance"), e
                str(e)  # the report renders
            else:
                outcomes["instance"] += 1
                assert isinstance(result, Instance)
    assert outcomes["error"] > 100 and outcomes["instance"] > 0, outcomes
    assert time.perf_counter() - started < 10


def test_random_mutations_through_files(tmp_path: Path) -> None:
    """The same mutations written as YAML and JSON text, where they can be represented."""
    rng = random.Random(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InstanceWarning)
        for k in range(40):
            data = _mutate(FULL, rng)
            for suffix in (".yaml", ".json"):
                try:
                    text = dump(data, suffix)
                except (ValueError, TypeError):
                    continue  # e.g. a 5000-digit int JSON will not write
                path = write(tmp_path, f"m{k}{suffix}", text)
                try:
                    load_instance(path)
                except InstanceError as e:
                    assert e.issues and all(i.message.strip() for i in e.issues)


def test_loader_never_leaks_other_exceptions(tmp_path: Path, yaml_parser: str) -> None:
    texts = ["a: !!binary ===\n", "a: !!timestamp nope\n", "a: !!int x\n", "a: !!float x\n",
             "? !!python/none\n: 1\n", "a: *undefined\n", "&a a: 1\n&a b: 2\n", "%YAML 9.9\n--- 1",
             "a: !!set {x: 1}\n", "- &x a\n- *x\n", "\x85\u2028: 1\n", "a: |\n bad\n  more\n"]
    for k, text in enumerate(texts):
        path = write(tmp_path, f"t{k}.yaml", text)
        try:
            load_instance(path)
        except InstanceError as e:
            assert e.issues and all(i.message for i in e.issues)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.yaml", "a: 1\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who reads anything")
        err = errors_of(load_instance, path)
        assert report(err) == ["cannot read instance file: Permission denied"]
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("where", ["/dev/stdout", "/dev/gpualloc-test.json", "/proc/x.json"])
def test_the_atomic_writer_never_replaces_system_files(where: str) -> None:
    before = os.lstat("/dev/stdout") if os.path.lexists("/dev/stdout") else None
    with pytest.raises(OSError, match="system folder"):
        gio.atomic_write_text(where, "{}\n")
    if before is not None:
        after = os.lstat("/dev/stdout")
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not os.path.exists("/dev/gpualloc-test.json")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_the_atomic_writer_never_replaces_a_fifo_or_a_link_to_one(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    for path in (fifo, link, tmp_path):
        with pytest.raises(OSError):
            gio.atomic_write_text(path, "{}\n")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()

"""Importing jobs from a spreadsheet CSV: the happy path, and errors located by row and column."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from gpualloc.models import Instance, InstanceError, InstanceWarning, load_instance, save_instance
from gpualloc.models.validator import validate
from gpualloc.sources.jobs_csv import import_jobs, parse_jobs_csv, read_jobs_csv
from tests.conftest import solve_checked

BASE: dict[str, Any] = {
    "name": "base",
    "horizon": {"periods": 6, "period_hours": 10},
    "clusters": [
        {"id": "cn1", "region": "east", "country": "CN", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 1.0},
            {"accelerator": "H20", "gpus": 16, "price_per_gpu_hour": 0.5}]},
        {"id": "sg1", "region": "south", "country": "SG", "pools": [
            {"accelerator": "H800", "gpus": 8, "price_per_gpu_hour": 2.0}]},
    ],
    "startups": [{"id": "alpha", "credits": 1000}, {"id": "beta"}],
    "jobs": [{"id": "old", "startup": "alpha", "value": 1,
              "options": [{"accelerator": "H20", "gpus": 1, "periods": 1}]}],
}

GOOD = """\ufeffid,startup,value,release,deadline,mandatory,after,accelerator,gpus,periods,\
option_value,clusters,regions
prep,alpha,2,,,,,H20,4,1,,,
train,alpha,10,1,6,yes,prep;old,H800,4,2,,cn1; sg1,
train,,,,,,,H20,8,3,7,,
,,,,,,,,,,,,
serve, beta ,3,0,,false,,H20,2,2,,,east
"""


def base() -> Instance:
    return Instance.model_validate(BASE)


def write(tmp_path: Path, text: str, name: str = "jobs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str) -> list[str]:
    with pytest.raises(InstanceError) as e:
        add(text)
    return e.value.messages


def add(text: str) -> Instance:
    from gpualloc.sources.jobs_csv import add_jobs

    return add_jobs(base(), parse_jobs_csv(text, "jobs.csv"))


HEADER = "id,startup,value,accelerator,gpus,periods,after\n"


def test_happy_path_adds_jobs_with_their_options(tmp_path: Path) -> None:
    inst = import_jobs(base(), write(tmp_path, GOOD))
    assert [j.id for j in inst.jobs] == ["old", "prep", "train", "serve"]
    train = inst.job_by_id["train"]
    assert (train.startup, train.value, train.release, train.deadline, train.mandatory) == (
        "alpha", 10.0, 1, 6, True)
    assert train.after == ("prep", "old")
    assert train.clusters == ("cn1", "sg1")
    assert train.regions is None
    assert [(o.accelerator, o.gpus, o.periods, o.value) for o in train.options] == [
        ("H800", 4, 2, None), ("H20", 8, 3, 7.0)]
    serve = inst.job_by_id["serve"]
    assert (serve.startup, serve.mandatory, serve.regions, serve.deadline) == (
        "beta", False, ("east",), None)
    prep = inst.job_by_id["prep"]
    assert (prep.release, prep.mandatory, prep.after, prep.clusters) == (0, False, (), None)

    out = tmp_path / "new.yaml"
    save_instance(inst, out)
    assert load_instance(out) == inst
    plan = solve_checked(inst, "cpsat", time_limit=30)
    assert validate(inst, plan) == []
    assert plan.assignment("train") is not None  # mandatory


def test_rows_record_where_each_job_came_from(tmp_path: Path) -> None:
    jobs = read_jobs_csv(write(tmp_path, GOOD))
    assert [(j.id, j.rows) for j in jobs] == [("prep", [2]), ("train", [3, 4]),
                                              ("serve", [6])]
    assert jobs[1].cells["after"] == 3


def test_bad_cell_is_located_by_row_and_column() -> None:
    text = HEADER + "a,alpha,1,H20,1,1,\nb,alpha,1,H20,2,1,\nc,alpha,1,H20,x,1,\n"
    assert problems(text) == [
        "jobs.csv row 4, column gpus: expected a positive integer, got 'x'"]


def test_every_cell_problem_is_reported_at_once() -> None:
    text = ("id,startup,value,release,mandatory,accelerator,gpus,periods,option_value\n"
            "a,alpha,-1,0,maybe,H20,0,1.5,\n"
            "b,alpha,1,-2,no,,2,1,nan\n"
            ",alpha,1,0,no,H20,2,1,\n")
    assert problems(text) == [
        "jobs.csv row 2, column gpus: expected a positive integer, got '0'",
        "jobs.csv row 2, column mandatory: expected true or false (also yes/no, 1/0), "
        "got 'maybe'",
        "jobs.csv row 2, column periods: expected a positive integer, got '1.5'",
        "jobs.csv row 2, column value: expected a non-negative number, got '-1'",
        "jobs.csv row 3, column accelerator: missing: this cell is required",
        "jobs.csv row 3, column option_value: expected a non-negative number, got 'nan'",
        "jobs.csv row 3, column release: expected a non-negative integer, got '-2'",
        "jobs.csv row 4, column id: missing: this cell is required",
    ]


def test_header_problems() -> None:
    assert problems("id,startup,accelerator,gpu,periods,colour\n") == [
        "jobs.csv row 1: missing column 'gpus'",
        "jobs.csv row 1, column colour: unknown column 'colour' (known: id, startup, value, "
        "release, deadline, mandatory, after, accelerator, gpus, periods, option_value, "
        "clusters, regions)",
        "jobs.csv row 1, column gpu: unknown column 'gpu' (did you mean 'gpus'?)",
    ]
    assert problems("") == ["jobs.csv row 1: expected a header row naming the columns (id, "
                            "startup, value, release, deadline, mandatory, after, accelerator, "
                            "gpus, periods, option_value, clusters, regions)"]
    assert problems(HEADER) == ["jobs.csv row 2: no jobs: the file has a header but no rows"]
    assert problems("ID , Startup,Accelerator,GPUS,periods,gpus\n") == [
        "jobs.csv row 1, column gpus: column 'gpus' appears twice"]


def test_header_cell_and_instance_problems_come_in_one_report(tmp_path: Path) -> None:
    # an unknown column, a bad cell and an unknown start-up elsewhere: one report, three lines
    text = ("id,startup,colour,accelerator,gpus,periods\n"
            "a,alpha,red,H20,x,1\n"
            "b,gamma,blue,H20,1,1\n")
    path = write(tmp_path, text)
    with pytest.raises(InstanceError) as e:
        import_jobs(base(), path)
    msgs = e.value.messages
    assert msgs[0].startswith("jobs.csv row 1, column colour: unknown column 'colour'")
    assert "jobs.csv row 2, column gpus: expected a positive integer, got 'x'" in msgs
    assert any(m.startswith("jobs.csv row 3, column startup: unknown start-up 'gamma'")
               for m in msgs), msgs
    assert len(msgs) == 3, msgs


def test_rows_of_one_job_must_agree() -> None:
    text = HEADER + "a,alpha,1,H20,1,1,\na,beta,1,H20,2,1,\na,,2,H800,2,1,\nb,,1,H20,1,1,\n"
    assert problems(text) == [
        "jobs.csv row 3, column startup: 'beta' conflicts with row 2 of job 'a' ('alpha'); "
        "leave it blank or repeat the same value",
        "jobs.csv row 4, column value: '2' conflicts with row 2 of job 'a' (1.0); leave it "
        "blank or repeat the same value",
        "jobs.csv row 5, column startup: missing: job 'b' names no start-up in any row",
    ]


def test_instance_errors_are_located_in_the_csv() -> None:
    text = (HEADER + "a,alpha,1,H20,1,1,nope\n"
            "b,gamma,1,H900,1,1,\n"
            "b,,,H20,99999999999,1,\n"
            "old,alpha,1,H20,1,1,\n")
    msgs = problems(text)
    assert "jobs.csv row 5, column id: job 'old' is already in the instance (jobs[0])" in msgs
    assert len(msgs) == 5  # everything at once: the old id and the four below
    assert sum("row 5" in m for m in msgs) == 1  # the duplicate id said once
    msgs = problems(text.replace("old,", "new,"))
    assert any(m.startswith("jobs.csv row 2, column after: unknown job 'nope'") for m in msgs)
    assert any(m.startswith("jobs.csv row 3, column startup: unknown start-up 'gamma'")
               for m in msgs)
    assert any(m.startswith("jobs.csv row 3, column accelerator: unknown accelerator 'H900'")
               for m in msgs)
    assert any(m.startswith("jobs.csv row 4, column gpus:") for m in msgs)
    assert all(m.startswith("jobs.csv row ") for m in msgs), msgs


def test_window_and_cycle_problems_point_at_the_rows() -> None:
    text = ("id,startup,release,deadline,accelerator,gpus,periods,after\n"
            "a,alpha,0,2,H20,1,3,\n"
            "a,alpha,,,H20,2,4,\n"
            "b,alpha,,,H20,1,1,c\n"
            "c,alpha,,,H20,1,1,b\n"
            "d,alpha,,9,H20,1,1,\n")
    msgs = problems(text)
    assert any(m.startswith("jobs.csv rows 2, 3 (job 'a'): no option fits the window [0, 2)")
               for m in msgs), msgs
    assert any(m.startswith("jobs.csv row 4, column after: dependency cycle: b -> c -> b")
               for m in msgs), msgs
    assert any(m.startswith("jobs.csv row 6, column deadline: deadline 9 is past the horizon")
               for m in msgs), msgs


def test_warnings_are_located_in_the_csv() -> None:
    text = ("id,startup,deadline,accelerator,gpus,periods\n"
            "a,alpha,2,H20,1,1\n"
            "a,alpha,2,H20,1,5\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inst = add(text)
    assert len(inst.jobs) == 2
    messages = [str(w.message) for w in caught if issubclass(w.category, InstanceWarning)]
    assert messages == ["jobs.csv row 3, column periods: 5 periods never fit the window "
                        "[0, 2): this option is never used"]


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(InstanceError) as e:
        read_jobs_csv(tmp_path / "missing.csv")
    assert "cannot read jobs CSV" in e.value.messages[0]
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("id,startup\nj\xe9,alpha\n".encode("latin-1"))
    with pytest.raises(InstanceError) as e:
        read_jobs_csv(bad)
    assert "not UTF-8" in e.value.messages[0] and e.value.source == str(bad)
    with pytest.raises(InstanceError) as e:
        read_jobs_csv(write(tmp_path, HEADER + 'a,alpha,1,H20,1,1,"b\n'))
    assert e.value.messages[0].startswith("jobs.csv row 2: malformed CSV")
    with pytest.raises(InstanceError) as e:
        read_jobs_csv(write(tmp_path, HEADER + "a,alpha,1,H20,1,1,,extra\n"))
    assert e.value.messages == ["jobs.csv row 2: 8 cells but the header names 7 columns"]

"""Replaying the Philly trace as an instance: a tiny hand-made trace, then the real one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from gpualloc.models import InstanceError
from gpualloc.sources.philly import machine_gpus, philly_instance

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PHILLY = SHARED / "data" / "philly"


def _write(tmp: Path, jobs: list[dict[str, Any]], machines: str) -> Path:
    (tmp / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    (tmp / "machine_list.csv").write_text(machines, encoding="utf-8")
    return tmp / "jobs.json"


MACHINES = ",machineId,number of GPUs\n0,m0,8\n1,m1,4\n2,m2,0\n"
JOBS = [
    {"id": "a", "num_gpus": 8, "runtime": 30.0, "submitted_time": "2017-10-01 23:10:00",
     "attempts": []},
    {"id": "b", "num_gpus": 4, "runtime": 721.0, "submitted_time": "2017-10-02 13:00:00"},
    {"id": "c", "num_gpus": 12, "runtime": 1440.0, "submitted_time": "2017-10-03 00:00:00"},
]


def test_tiny_trace(tmp_path: Path) -> None:
    inst = philly_instance(_write(tmp_path, JOBS, MACHINES))
    assert inst.horizon.period_hours == 12 and str(inst.horizon.start) == "2017-10-01"
    pool = inst.clusters[0].pools[0]
    assert (pool.accelerator, pool.gpus, pool.price_per_gpu_hour) == ("P100", 12, 1.0)
    assert inst.export_class("P100") == "unrestricted"
    assert [s.credits for s in inst.startups] == [None] and inst.caps == ()
    a, b, c = inst.jobs
    # release = period of submission (periods of 12 h from midnight of the first day)
    assert (a.release, b.release, c.release) == (1, 3, 4)
    # periods = ceil(runtime / 720 minutes), at least one; value = GPU-periods
    assert [j.options[0].periods for j in inst.jobs] == [1, 2, 2]
    assert [j.options[0].gpus for j in inst.jobs] == [8, 4, 12]
    assert [j.value for j in inst.jobs] == [8.0, 8.0, 24.0]
    assert [j.deadline for j in inst.jobs] == [16, 19, 20]  # release + periods + 14
    assert inst.horizon.periods == 20


def test_tiny_trace_options(tmp_path: Path) -> None:
    path = _write(tmp_path, JOBS, MACHINES)
    inst = philly_instance(path, tmp_path / "machine_list.csv", period_hours=24, slack=None,
                           capacity_scale=0.5)
    assert inst.clusters[0].pools[0].gpus == 6
    assert all(j.deadline is None for j in inst.jobs)
    assert [j.release for j in inst.jobs] == [0, 1, 2]
    assert inst.horizon.periods == 3  # the last job ends at 2 + 1
    with pytest.raises(ValueError):
        philly_instance(path, slack=-1)


def test_bad_trace_is_reported_with_locations(tmp_path: Path) -> None:
    bad = [dict(JOBS[0], num_gpus=0), dict(JOBS[1], runtime=-5), {"id": "x"}]
    with pytest.raises(InstanceError) as e:
        philly_instance(_write(tmp_path, bad, MACHINES))
    text = str(e.value)
    assert "[0].num_gpus" in text and "[1].runtime" in text and "[2]" in text
    (tmp_path / "jobs.json").write_text("[{", encoding="utf-8")
    with pytest.raises(InstanceError, match="line 1"):
        philly_instance(tmp_path / "jobs.json")
    (tmp_path / "m.csv").write_text("id,gpus\nm0,lots\n", encoding="utf-8")
    with pytest.raises(InstanceError, match="not a GPU count"):
        machine_gpus(tmp_path / "m.csv")


@pytest.mark.skipif(not PHILLY.is_dir(), reason="../shared/data/philly not present")
def test_real_philly_trace() -> None:
    inst = philly_instance(PHILLY / "jobs.json", PHILLY / "machine_list.csv")
    assert len(inst.jobs) == 3034
    assert inst.clusters[0].pools[0].gpus == 3205  # 552 machines
    assert len(machine_gpus(PHILLY / "machine_list.csv")) == 552
    raw = json.loads((PHILLY / "jobs.json").read_text(encoding="utf-8"))
    first = inst.job_by_id[raw[0]["id"]]
    assert first.options[0].gpus == raw[0]["num_gpus"]
    assert first.options[0].periods == math.ceil(raw[0]["runtime"] / 720)
    assert all(j.release + j.options[0].periods <= inst.deadline(j) <= inst.horizon.periods
               for j in inst.jobs)
    assert max(j.release for j in inst.jobs) >= 200  # ~109 days of submissions


def test_bench_targets_from_tiers_and_philly(tmp_path: Path) -> None:
    from gpualloc.cli.scale import bench_items

    path = _write(tmp_path, JOBS, MACHINES)
    items = bench_items([], False, ["medium"], path)
    assert [label for label, _, _ in items] == ["medium:synthetic-c8-s12-j400-p26-seed101",
                                                "philly-2017"]
    assert len(items[1][1].jobs) == 3 and items[1][2] is None

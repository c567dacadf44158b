"""Replay the Microsoft Philly trace (2017) as an instance.

``philly_instance(jobs_json, machine_list_csv)`` turns the trace's successful training jobs
(``jobs.json``: ``id``, ``num_gpus``, ``runtime`` in minutes, ``submitted_time``) and its
machines (``machine_list.csv``: GPUs per machine) into a planning instance:

- **Time**: periods of ``period_hours`` (default 12) hours; period 0 starts at midnight of
  the day of the first submission (``horizon.start``).
- **Cluster**: one cluster ``philly`` (region ``philly``, country ``US``) with one pool of
  every machine's GPUs (3,205 GPUs on 552 machines; ``capacity_scale`` shrinks or grows it for
  stress tests). The trace does not name the GPU model; the pool's accelerator is ``P100``,
  declared in ``accelerators`` with ``export_class: unrestricted``. The price is 1 credit per
  GPU-hour, so a plan's cost reads as GPU-hours; there are no credit budgets (one start-up,
  ``philly``, with ``credits: null``) and no caps. Gangs may span machines (no
  ``max_gpus_per_job``), as Philly's multi-machine jobs did.
- **Jobs**: one per trace job, one option: ``gpus = num_gpus``,
  ``periods = ceil(runtime / (60 * period_hours))`` (at least 1), ``release`` = the period of
  ``submitted_time``. **Value** = ``gpus * periods``, the GPU-periods served: the optimum
  serves as much GPU time as possible. **Deadline** = ``release + periods + slack`` (default
  ``slack`` 14 periods = one week): a job counts only if it ends within a week of its earliest
  possible end. ``slack=None`` drops deadlines (every job may run until the horizon ends; the
  model then has one binary per job and start period left in the horizon, about 7 times
  more).
- **Horizon**: up to the latest deadline (``max(release + periods) + slack``).

The traces live outside the package (``../shared/data/philly``); this module only reads the
paths it is given. Problems in the files raise ``InstanceError`` with a location.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from ..models.errors import InstanceError, Issue
from ..models.instance import Instance

ACCELERATOR = {"name": "P100", "vendor": "NVIDIA", "origin": "US", "datacenter": True,
               "memory_gb": 16, "tpp": 339, "export_class": "unrestricted"}
DEFAULT_SLACK = 14


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InstanceError([Issue("", f"cannot read {path}: {e}")], str(path)) from None
    except json.JSONDecodeError as e:
        raise InstanceError([Issue(f"line {e.lineno}, column {e.colno}", e.msg)],
                            str(path)) from None


def machine_gpus(machine_list_csv: str | Path) -> list[int]:
    """GPUs per machine from ``machine_list.csv`` (the column whose name mentions GPUs)."""
    path = Path(machine_list_csv)
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InstanceError([Issue("", f"cannot read {path}: {e}")], str(path)) from None
    column = next((k for k in (rows[0] if rows else {}) if k and "gpu" in k.lower()), None)
    if column is None:
        raise InstanceError([Issue("", "no column of GPU counts (a header naming GPUs)")],
                            str(path))
    out, issues = [], []
    for i, row in enumerate(rows):
        try:
            n = int(row[column])
            if n < 0:
                raise ValueError
        except (TypeError, ValueError):
            issues.append(Issue(f"row {i + 2}.{column}", f"not a GPU count: {row[column]!r}"))
            continue
        out.append(n)
    if issues:
        raise InstanceError(issues, str(path))
    return out


def philly_instance(jobs_json: str | Path, machine_list_csv: str | Path | None = None, *,
                    period_hours: float = 12.0, slack: int | None = DEFAULT_SLACK,
                    capacity_scale: float = 1.0, name: str = "philly-2017") -> Instance:
    """The Philly trace as an instance (see the module docstring for every choice).

    ``machine_list_csv`` defaults to ``machine_list.csv`` next to ``jobs_json``.
    """
    if not period_hours > 0 or not math.isfinite(period_hours):
        raise ValueError("period_hours must be positive")
    if slack is not None and (isinstance(slack, bool) or slack < 0):
        raise ValueError("slack must be a non-negative integer or None")
    if not capacity_scale > 0 or not math.isfinite(capacity_scale):
        raise ValueError("capacity_scale must be positive")
    jobs_path = Path(jobs_json)
    machines_path = Path(machine_list_csv) if machine_list_csv is not None else \
        jobs_path.with_name("machine_list.csv")
    raw = _read_json(jobs_path)
    if not isinstance(raw, list):
        raise InstanceError([Issue("", "expected a list of jobs")], str(jobs_path))

    issues: list[Issue] = []
    parsed: list[tuple[str, int, float, dt.datetime]] = []
    for i, job in enumerate(raw):
        loc = f"[{i}]"
        if not isinstance(job, dict):
            issues.append(Issue(loc, "expected a job object"))
            continue
        try:
            ident = str(job["id"])
            gpus = job["num_gpus"]
            runtime = float(job["runtime"])
            submitted = dt.datetime.fromisoformat(str(job["submitted_time"]))
        except KeyError as e:
            issues.append(Issue(loc, f"missing {e.args[0]!r}"))
            continue
        except (TypeError, ValueError) as e:
            issues.append(Issue(loc, f"bad field: {e}"))
            continue
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            issues.append(Issue(f"{loc}.num_gpus", f"not a positive integer: {gpus!r}"))
            continue
        if not math.isfinite(runtime) or runtime <= 0:
            issues.append(Issue(f"{loc}.runtime", f"not a positive number of minutes: "
                                f"{job['runtime']!r}"))
            continue
        parsed.append((ident, gpus, runtime, submitted))
    if issues:
        raise InstanceError(issues, str(jobs_path))
    if not parsed:
        raise InstanceError([Issue("", "no jobs")], str(jobs_path))

    origin = min(t for *_, t in parsed).replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = period_hours * 3600.0
    jobs: list[dict[str, Any]] = []
    horizon = 1
    for ident, gpus, runtime, submitted in parsed:
        release = int((submitted - origin).total_seconds() // seconds)
        periods = max(1, math.ceil(runtime * 60.0 / seconds - 1e-9))
        job: dict[str, Any] = {"id": ident, "startup": "philly",
                               "value": float(gpus * periods), "release": release,
                               "options": [{"accelerator": "P100", "gpus": gpus,
                                            "periods": periods}]}
        end = release + periods + (slack or 0)
        if slack is not None:
            job["deadline"] = end
        horizon = max(horizon, end)
        jobs.append(job)

    total = sum(machine_gpus(machines_path))
    data = {
        "name": name,
        "horizon": {"periods": horizon, "period_hours": float(period_hours),
                    "start": origin.date().isoformat()},
        "accelerators": [ACCELERATOR],
        "clusters": [{"id": "philly", "region": "philly", "country": "US",
                      "pools": [{"accelerator": "P100",
                                 "gpus": round(total * capacity_scale),
                                 "price_per_gpu_hour": 1.0}]}],
        "startups": [{"id": "philly", "name": "Philly users (Microsoft, 2017)"}],
        "jobs": jobs,
    }
    return Instance.model_validate(data)


__all__ = ["machine_gpus", "philly_instance"]

#!/usr/bin/env python3
"""Fit job-shape parameters from the public GPU-cluster traces, once, for the generator.

Reads the traces under ``../shared/data`` (see its README) and writes
``gpualloc/sources/data/trace_params.json``, which ships inside the package: the instance generator
(``gpualloc.sources.generate``) reads only that JSON at run time, never the traces.

What is fitted, per trace:

- **Microsoft Philly** (``philly/jobs.json``: 3,034 successful training jobs with >= 4 GPUs):
  gang sizes as power-of-two buckets (a job's ``num_gpus`` rounded up to a power of two) with
  counts and probabilities; runtimes (minutes) as a log-normal, ``mu`` and ``sigma`` being the
  mean and standard deviation of ``ln(runtime)`` (maximum likelihood), overall and per gang
  bucket, with empirical quantiles to judge the fit; arrivals (``submitted_time``) as an
  hour-of-week profile (168 probabilities, Monday 00:00 first), an hour-of-day profile and a
  ``span_profile``: the share of submissions in each of 24 equal slices of the trace's span,
  the shape of the arrival process over time that the generator maps onto its horizon.
- **Alibaba openb** (``alibaba-openb/openb_pod_list_default.csv``, 8,152 pods, and the
  multi-GPU heavy sample ``openb_pod_list_multigpu50.csv``): gang sizes of the pods that use
  GPUs (``num_gpu >= 1``), the share of GPU-sharing pods (``gpu_milli < 1000``), lifetimes
  ``deletion_time - creation_time`` (seconds) as a log-normal over the pods that ran
  (``pod_phase`` Running, Succeeded or Failed; Running pods are censored at the snapshot, so
  this understates long lifetimes), and arrivals (``creation_time``) as a span profile and an
  hour-of-day profile (the trace's time origin is undisclosed: hours count from it).

The output is deterministic (no timestamps; floats rounded to 6 significant digits), so
re-running the script on the same traces reproduces the committed file byte for byte.

Usage (from the repository root)::

    python scripts/fit_traces.py                      # ../shared/data -> gpualloc/sources/data/...
    python scripts/fit_traces.py --data DIR --out FILE
    python scripts/fit_traces.py --check              # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "gpualloc" / "sources" / "data" / "trace_params.json"
SPAN_BINS = 24
FORMAT_VERSION = 1


def sig(x: float, digits: int = 6) -> float:
    """``x`` rounded to ``digits`` significant digits (stable JSON across runs)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def probs(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [sig(c / total) for c in counts]


def pow2_bucket(n: int) -> int:
    """The smallest power of two >= n (n >= 1)."""
    return 1 << (n - 1).bit_length()


def gang_buckets(sizes: Iterable[int]) -> dict[str, Any]:
    """Empirical distribution of gang sizes rounded up to powers of two."""
    counts = Counter(pow2_bucket(s) for s in sizes if s >= 1)
    buckets = sorted(counts)
    return {"buckets": buckets, "counts": [counts[b] for b in buckets],
            "probs": probs([counts[b] for b in buckets])}


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted ``xs``."""
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def lognormal(values: Iterable[float], unit: str) -> dict[str, Any]:
    """Maximum-likelihood log-normal fit of positive values, with empirical quantiles."""
    xs = sorted(v for v in values if v > 0)
    logs = [math.log(v) for v in xs]
    return {
        "dist": "lognormal", "unit": unit, "n": len(xs),
        "mu": sig(statistics.fmean(logs)), "sigma": sig(statistics.pstdev(logs)),
        "min": sig(xs[0]), "max": sig(xs[-1]), "mean": sig(statistics.fmean(xs)),
        "quantiles": {f"p{int(q * 100)}": sig(quantile(xs, q))
                      for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
    }


def span_profile(times: Sequence[float], bins: int = SPAN_BINS) -> list[float]:
    """Share of events in each of ``bins`` equal slices of ``[min(times), max(times)]``."""
    lo, hi = min(times), max(times)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for t in times:
        counts[min(bins - 1, int((t - lo) / width))] += 1
    return probs(counts)


def fit_philly(folder: Path) -> dict[str, Any]:
    jobs = json.loads((folder / "jobs.json").read_text(encoding="utf-8"))
    sizes = [int(j["num_gpus"]) for j in jobs]
    runtimes = [float(j["runtime"]) for j in jobs]
    submitted = [dt.datetime.fromisoformat(j["submitted_time"]) for j in jobs]
    t0 = min(submitted)
    seconds = [(t - t0).total_seconds() for t in submitted]
    span_days = (max(submitted) - t0).total_seconds() / 86400
    how = Counter(t.weekday() * 24 + t.hour for t in submitted)
    hod = Counter(t.hour for t in submitted)
    by_gang: dict[str, Any] = {}
    for bucket in sorted({pow2_bucket(s) for s in sizes}):
        sub = [r for s, r in zip(sizes, runtimes, strict=True) if pow2_bucket(s) == bucket]
        if len(sub) >= 2:
            fit = lognormal(sub, "minutes")
            by_gang[str(bucket)] = {k: fit[k] for k in ("n", "mu", "sigma")}
    machines = list(csv.DictReader((folder / "machine_list.csv").open(encoding="utf-8")))
    gpus_col = next(k for k in machines[0] if "gpu" in k.lower())
    machine_gpus = Counter(int(m[gpus_col]) for m in machines)
    return {
        "source": "Microsoft Philly trace (msr-fiddle/philly-traces, CC BY 4.0): "
                  "philly/jobs.json, philly/machine_list.csv",
        "jobs": len(jobs),
        "gang_sizes": gang_buckets(sizes),
        "raw_gang_sizes": {str(k): v for k, v in sorted(Counter(sizes).items())},
        "runtime_minutes": lognormal(runtimes, "minutes"),
        "runtime_minutes_by_gang": by_gang,
        "arrivals": {
            "first": t0.isoformat(sep=" "), "span_days": sig(span_days),
            "jobs_per_day": sig(len(jobs) / span_days),
            "span_profile": span_profile(seconds),
            "hour_of_week": probs([how[h] for h in range(168)]),
            "hour_of_day": probs([hod[h] for h in range(24)]),
        },
        "machines": {"count": len(machines), "gpus": sum(k * v for k, v in machine_gpus.items()),
                     "by_gpus": {str(k): v for k, v in sorted(machine_gpus.items())}},
        "load": {"gpu_hours": sig(sum(s * r for s, r in zip(sizes, runtimes, strict=True)) / 60),
                 "mean_busy_gpus": sig(sum(s * r for s, r in zip(sizes, runtimes, strict=True))
                                       / 60 / (span_days * 24))},
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def fit_alibaba(folder: Path) -> dict[str, Any]:
    pods = _rows(folder / "openb_pod_list_default.csv")
    heavy = _rows(folder / "openb_pod_list_multigpu50.csv")
    gpu_pods = [p for p in pods if int(p["num_gpu"]) >= 1]
    sharing = sum(1 for p in gpu_pods if int(p["num_gpu"]) == 1 and int(p["gpu_milli"]) < 1000)
    ran = [p for p in gpu_pods if p["pod_phase"] in ("Running", "Succeeded", "Failed")]
    lifetimes = [float(p["deletion_time"]) - float(p["creation_time"]) for p in ran]
    created = [float(p["creation_time"]) for p in pods]
    hod = Counter(int(t // 3600) % 24 for t in created)
    span_days = (max(created) - min(created)) / 86400
    return {
        "source": "Alibaba cluster-trace-gpu-v2023 openb (alibaba/clusterdata): "
                  "openb_pod_list_default.csv, openb_pod_list_multigpu50.csv",
        "pods": len(pods),
        "gpu_pods": len(gpu_pods),
        "gang_sizes": gang_buckets(int(p["num_gpu"]) for p in gpu_pods),
        "gpu_sharing_share": sig(sharing / len(gpu_pods)),
        "multigpu50_gang_sizes": gang_buckets(int(p["num_gpu"]) for p in heavy),
        "duration_seconds": lognormal(lifetimes, "seconds"),
        "arrivals": {
            "span_days": sig(span_days), "pods_per_day": sig(len(pods) / span_days),
            "span_profile": span_profile(created),
            "hour_of_day": probs([hod[h] for h in range(24)]),
        },
    }


def fit(data: Path) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "generated_by": "scripts/fit_traces.py",
        "philly": fit_philly(data / "philly"),
        "alibaba_openb": fit_alibaba(data / "alibaba-openb"),
    }


def render(params: dict[str, Any]) -> str:
    return json.dumps(params, indent=1, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/data folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if --out differs from a fresh fit")
    args = ap.parse_args(argv)
    text = render(fit(args.data))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; re-run scripts/fit_traces.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

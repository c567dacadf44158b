"""The size of an instance's model, estimated before it is built, and the memory check.

``estimate(instance)`` counts, per job, option and allowed cluster, the start periods that
``formulation.build`` would make into placements (rules 2, 3 and eligibility, with the same
never-fits-the-pool filter), without creating any of them: its cost is one pass over the
job options and clusters plus one prefix sum per (pool, gpus, periods). The placement count is
exact; the nonzeros are an upper bound (rows that ``build`` leaves out as implied are
counted); the bytes are a calibrated linear model of the solve's peak memory.

``check_memory(instance, max_memory)`` raises ``ModelTooLarge`` when the estimate does not
fit (``solve(..., max_memory=...)`` calls it first; the CLI maps it to exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from ...models import Cap, Instance, Job
from .precedence import PRECEDENCE_FULL_TERMS, PRECEDENCE_ROWS

# Peak resident memory of ``solve`` (build, greedy, the search; default backend and strategy)
# per placement and per nonzero, plus the interpreter and libraries: fitted from above (-0.1% to
# +21%) to the peak RSS of `gpualloc solve --time-limit 60` on generated instances of 7e3 ..
# 1.05e6 placements (README, "Size, time and memory guarantees"), with rows stored as arrays.
BYTES_PER_PLACEMENT = 1100
BYTES_PER_NONZERO = 60
BASE_BYTES = 340 * 2**20
DEFAULT_MEMORY_FRACTION = 0.6  # of MemAvailable, for the default limit


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    """What building and solving the model of an instance will take (before it is built)."""

    placements: int
    nonzeros: int
    bytes: int  # estimated peak memory of a solve

    def describe(self) -> str:
        return (f"{self.placements:,} placements, ~{self.nonzeros:,} nonzeros, "
                f"~{human_bytes(self.bytes)}")


class ModelTooLarge(ValueError):
    """The model's estimated memory is over the limit asked for."""

    def __init__(self, estimate: ModelEstimate, limit: int) -> None:
        self.estimate = estimate
        self.limit = limit
        super().__init__(f"the model would need about {human_bytes(estimate.bytes)} "
                         f"({estimate.placements:,} placements, ~{estimate.nonzeros:,} "
                         f"nonzeros), over the memory limit of {human_bytes(limit)}")


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def available_memory(path: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` in bytes (Linux), else None."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def default_memory_limit() -> int | None:
    """``DEFAULT_MEMORY_FRACTION`` of the available memory, or None where it is unknown."""
    free = available_memory()
    return None if free is None else int(DEFAULT_MEMORY_FRACTION * free)


def check_memory(instance: Instance, max_memory: int | None) -> ModelEstimate | None:
    """Raise ``ModelTooLarge`` when the estimated model does not fit in ``max_memory`` bytes
    (None: no limit, nothing estimated)."""
    if max_memory is None:
        return None
    found = estimate(instance)
    if found.bytes > max_memory:
        raise ModelTooLarge(found, max_memory)
    return found


def estimate(instance: Instance) -> ModelEstimate:
    """Placements (exact), nonzeros (an estimate) and peak bytes of ``instance``'s model."""
    counter = _Counter(instance)
    placements = nonzeros = 0
    per_job: dict[str, tuple[int, int]] = {}  # job -> (placements, distinct starts)
    for job in instance.jobs:
        count, starts, entries = counter.job(job)
        per_job[job.id] = (count, starts)
        placements += count
        nonzeros += entries
    for job in instance.jobs:  # precedence: per edge and start t, started(j, t) - ended(i, t)
        count, starts = per_job[job.id]
        for dep in job.after:
            nonzeros += _edge_terms(job, instance.job_by_id.get(dep), count, starts,
                                    per_job.get(dep, (0, 0))[0])
    size = BASE_BYTES + BYTES_PER_PLACEMENT * placements + BYTES_PER_NONZERO * nonzeros
    return ModelEstimate(placements, nonzeros, size)


def _edge_terms(job: Job, dep: Job | None, count: int, starts: int, dep_count: int) -> int:
    """Rule 5's terms for one edge: all its rows, or past ``PRECEDENCE_FULL_TERMS`` the thinned
    ones (``precedence._thinned``: the rows before the dep's first end, here its release plus
    its shortest option, then ``PRECEDENCE_ROWS`` and the order row)."""
    full = starts * (count + dep_count) // 2
    if full <= PRECEDENCE_FULL_TERMS or dep is None or not dep.options:
        return full
    first_end = dep.release + min(o.periods for o in dep.options)
    early = max(0, min(starts, first_end - job.release))
    # the kept rows hold half of both jobs' placements on average, the order row all of them
    return min(full, (PRECEDENCE_ROWS // 2 + 1) * (count + dep_count) + early * count // 2)


class _Counter:
    """Per job: its placements, distinct start periods and row entries (capacity, assign,
    credits, caps), from memoised prefix sums over the periods."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.last = max([instance.deadline(j) for j in instance.jobs], default=0)
        self.hours = instance.horizon.period_hours
        self.allowed: dict[tuple, list] = {}
        self.barred: dict[tuple[str, str, str], bool] = {}
        self.fits: dict[tuple[str, str, int, int], list[int]] = {}
        self.caps: dict[tuple[str, str, str, int], list[tuple[Cap, int]]] = {}
        self.short: dict[tuple[str, str, int], list[int]] = {}
        self.credited = {s.id for s in instance.startups if s.credits is not None}

    def job(self, job: Job) -> tuple[int, int, int]:
        inst = self.instance
        key = (job.startup, job.clusters, job.regions)
        if key not in self.allowed:
            self.allowed[key] = inst.allowed_clusters(job)
        deadline = inst.deadline(job)
        count = entries = 0
        starts = 0
        for option in job.options:
            n = option.periods
            if job.release + n > deadline:
                continue
            for cluster in self.allowed[key]:
                pool = cluster.pool(option.accelerator)
                if pool is None or (pool.max_gpus_per_job is not None
                                    and option.gpus > pool.max_gpus_per_job):
                    continue
                barred = (job.startup, cluster.id, option.accelerator)
                if barred not in self.barred:
                    self.barred[barred] = inst.ineligibility(
                        job, option.accelerator, cluster) is not None
                if self.barred[barred]:
                    continue
                fit = (cluster.id, option.accelerator, option.gpus, n)
                if fit not in self.fits:
                    self.fits[fit] = self._fitting_starts(cluster.id, pool, option.gpus, n)
                ok = self.fits[fit]
                here = ok[deadline - n + 1] - ok[job.release]
                if not here:
                    continue
                count += here
                starts = max(starts, here)
                per_var = 1 + n + (job.startup in self.credited)  # assign, capacity, credits
                per_var += self._cap_entries(job, cluster, option.accelerator, option.gpus, n)
                entries += here * per_var
        return count, starts, entries

    def _fitting_starts(self, cluster: str, pool, gpus: int, n: int) -> list[int]:
        """Prefix counts of the starts s whose periods s .. s+n-1 all have room for gpus."""
        where = (cluster, pool.accelerator, gpus)
        if where not in self.short:
            self.short[where] = [0, *accumulate(pool.gpus_at(t) < gpus
                                                for t in range(self.last))]
        short = self.short[where]
        fits = [s + n <= self.last and short[s + n] == short[s] for s in range(self.last + 1)]
        return [0, *accumulate(fits)]

    def _cap_entries(self, job: Job, cluster, accelerator: str, gpus: int, n: int) -> int:
        key = (job.startup, cluster.id, accelerator, gpus)
        if key not in self.caps:
            inst = self.instance
            found = []
            for cap in inst.caps:
                if cap.per_period_use(gpus, inst.tpp(accelerator), self.hours) <= 0:
                    continue
                scopes = [cap, *([cap.share_of] if cap.share_of is not None else [])]
                hits = sum(s.matches(inst, job, cluster, accelerator) for s in scopes)
                if hits:
                    found.append((cap, hits))
            self.caps[key] = found
        horizon = self.instance.horizon.periods
        return sum(hits * _windows_overlapped(cap, n, horizon) for cap, hits in self.caps[key])


def _windows_overlapped(cap: Cap, n: int, horizon: int) -> int:
    """At most how many of ``cap``'s windows an assignment of ``n`` periods runs in."""
    if cap.per == "period":
        return min(n, horizon)
    if cap.per == "rolling":
        k = min(cap.length or 1, horizon)
        return min(n + k - 1, horizon - k + 1)
    return 1


def memory_from_text(text: str) -> int:
    """Bytes from ``8G``, ``512M``, ``1.5GiB``, ``2000000000`` (ValueError if not a size)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(raw[-1:], 1)
    number = float(raw[:-1] if scale > 1 else raw)
    if not 0 < number < float("inf"):
        raise ValueError(f"{text!r} is not a positive size")
    return int(number * scale)


__all__ = ["ModelEstimate", "ModelTooLarge", "available_memory", "check_memory",
           "default_memory_limit", "estimate", "memory_from_text"]

"""Rule 5's rows: per edge and start of the job, started by then needs the dependency ended.

The strong time-indexed rows grow with the square of the starts; a long edge keeps a few of
them and one order row (see ``_thinned`` and ``_order_row``; README, "Long dependency rows").
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any

from ...models import Instance
from .linear import LinearModel, Row

_Block = Any  # formulation._Block: a job's placements on one option and cluster (no import back)
PRECEDENCE_FULL_TERMS = 20_000  # an edge's rule-5 rows up to this many terms: all of them
PRECEDENCE_ROWS = 24  # above: this many of its rows that the dep's ends reach, and one order row


def precedence_rows(model: LinearModel, instance: Instance, blocks: list[_Block],
                    check=lambda: None) -> None:
    """Rule 5's rows of every edge, appended to ``model.rows`` (thinned on long edges)."""
    by_job: dict[str, list[_Block]] = defaultdict(list)
    for b in blocks:
        by_job[b.job.id].append(b)
    for n_job, job in enumerate(instance.jobs):
        if not job.after:
            continue
        if n_job % 16 == 0:
            check()
        # the job's vars by start, and per dependency the dep's vars by end: each row's two
        # sides are prefixes of these (started by t; ended by t)
        starts, started = _by_time([(s, i) for b in by_job[job.id]
                                    for i, s in enumerate(b.starts, b.first)])
        all_times = sorted(set(starts))
        for dep in job.after:
            ends, ended = _by_time([(s + b.periods, i) for b in by_job[dep]
                                    for i, s in enumerate(b.starts, b.first)])
            times = all_times
            if ends and sum(bisect_right(starts, t) + bisect_right(ends, t)
                            for t in times) > PRECEDENCE_FULL_TERMS:
                kept = _thinned(times, ends[0])
                if len(kept) < len(times):
                    times = kept
                    model.rows.append(_order_row(job.id, dep, starts, started, ends, ended))
            for t in times:
                lhs = started[:bisect_right(starts, t)]
                rhs = ended[:bisect_right(ends, t)]
                model.rows.append(Row("precedence", f"after[{job.id},{dep},{t}]",
                                      lhs + rhs, [1.0] * len(lhs) + [-1.0] * len(rhs),
                                      "<=", 0.0))


def _thinned(times: list[int], first_end: int) -> list[int]:
    """The start times of an edge's rows kept when its rows are too long: every one before the
    dep's first end (short rows that rule the early starts out), ``PRECEDENCE_ROWS`` of the
    others spread evenly, the last among them (the job needs the dep)."""
    early = [t for t in times if t < first_end]
    rest = times[len(early):]
    if len(rest) <= PRECEDENCE_ROWS:
        return times  # nothing to thin
    step = (len(rest) - 1) / (PRECEDENCE_ROWS - 1)
    return early + sorted({rest[round(k * step)] for k in range(PRECEDENCE_ROWS)})


def _order_row(job: str, dep: str, starts: list[int], started: list[int], ends: list[int],
               ended: list[int]) -> Row:
    """Rule 5 for one edge in one row, exact on 0/1 values with the kept rows (which make
    the job need the dep): ``sum end * x[dep] + sum (M - start) * x[job] <= M``, M the dep's
    latest end, over the job's starts before M (later ones always follow the dep's end)."""
    m = ends[-1]
    early = [(s, i) for s, i in zip(starts, started, strict=True) if s < m]
    return Row("precedence", f"order[{job},{dep}]", ended + [i for _, i in early],
               [float(e) for e in ends] + [float(m - s) for s, _ in early], "<=", float(m),
               (job, dep))


def _by_time(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(times, vars) sorted by time (then var)."""
    pairs.sort()
    return [t for t, _ in pairs], [i for _, i in pairs]

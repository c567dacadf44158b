"""Structure of an instance: the options some allowed cluster can run, the dependency graph
and the earliest end of every job along its dependency chain."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ...models import Instance, Job
from ...models.rules import why_not_here


def _runnable(instance: Instance, job: Job) -> tuple[dict[int, int], list[str], bool]:
    """Options that some allowed cluster can run, ignoring window and capacity.

    Returns ``{option: periods}``, why the other options cannot run, and whether export
    eligibility bars a pool that could otherwise run one of them.
    """
    usable: dict[int, int] = {}
    why: list[str] = []
    barred = False
    allowed = instance.allowed_clusters(job)
    for k, o in enumerate(job.options):
        reasons = []
        for c in allowed:
            if c.pool(o.accelerator) is None:
                continue
            reason = why_not_here(instance, job, o.accelerator, o.gpus, c)
            if reason is not None:
                barred |= instance.ineligibility(job, o.accelerator, c) is not None
                reasons.append(reason)
                continue
            usable[k] = o.periods
            break
        else:
            if not reasons:
                reasons.append(f"no allowed cluster has a {o.accelerator} pool")
            why.append(f"option {k} ({o.accelerator} x{o.gpus}): {'; '.join(reasons)}")
    return usable, why, barred


def _graph(instance: Instance) -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(j.id for j in instance.jobs)
    for j in instance.jobs:
        g.add_edges_from((d, j.id) for d in j.after)
    return g


@dataclass
class _Timing:
    """Earliest ends along dependency chains (None: the job can never run)."""

    end: dict[str, int | None]
    critical: dict[str, str | None]  # the dependency that sets the earliest start
    usable: dict[str, dict[int, int]]
    why: dict[str, list[str]]
    barred: dict[str, bool]
    late: set[str] = field(default_factory=set)  # earliest end past the deadline

    def chain(self, job: str) -> list[str]:
        out = [job]
        while (prev := self.critical.get(out[-1])) is not None:
            out.append(prev)
        return out[::-1]


def _timing(instance: Instance, graph: nx.DiGraph) -> _Timing:
    t = _Timing({}, {}, {}, {}, {})
    for jid in nx.topological_sort(graph):
        job = instance.job_by_id[jid]
        t.usable[jid], t.why[jid], t.barred[jid] = _runnable(instance, job)
        t.critical[jid] = None
        start: int | None = job.release
        for dep in job.after:
            end = t.end.get(dep)
            if end is None or dep in t.late:
                start = None
                break
            if end > start:
                start, t.critical[jid] = end, dep
        if start is None or not t.usable[jid]:
            t.end[jid] = None
            continue
        t.end[jid] = start + min(t.usable[jid].values())
        if t.end[jid] > instance.deadline(job):
            t.late.add(jid)
    return t

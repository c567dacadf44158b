"""Cross-field checks of an instance: references, duplicates, cycles, windows.

They run on the raw mapping (as loaded from YAML/JSON, or dumped from a model) and tolerate
malformed parts, so that a file with both type errors and dangling references gets every
problem reported in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx

from .catalog import BUILTIN, REGIMES, can_classify
from .errors import Issue

_SCOPE_REFS = {"accelerators": "accelerator", "clusters": "cluster", "startups": "start-up"}
_SOFT_REFS = {"regions": "region", "countries": "country"}


def _items(data: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    seq = data.get(key)
    if isinstance(seq, list | tuple):
        for i, item in enumerate(seq):
            if isinstance(item, Mapping):
                yield i, item


def _strs(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _duplicates(data: Mapping[str, Any], key: str, field: str) -> Iterator[Issue]:
    seen: dict[Any, int] = {}
    for i, item in _items(data, key):
        ident = item.get(field)
        if not isinstance(ident, str):
            continue
        if ident in seen:
            yield Issue(f"{key}[{i}].{field}", f"duplicate id {ident!r} (first at {key}[{seen[ident]}])")
        else:
            seen[ident] = i


def semantic_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Every cross-field error and warning in a raw instance mapping."""
    if not isinstance(data, Mapping):
        return []
    out: list[Issue] = []
    for key, field in (("clusters", "id"), ("startups", "id"), ("jobs", "id"), ("caps", "id"),
                       ("accelerators", "name")):
        out.extend(_duplicates(data, key, field))

    horizon = data.get("horizon")
    periods = _int(horizon.get("periods")) if isinstance(horizon, Mapping) else None
    regime = data.get("regime", "oct2023")

    known_acc = set(BUILTIN) | {a["name"] for _, a in _items(data, "accelerators")
                                if isinstance(a.get("name"), str)}
    for i, acc in _items(data, "accelerators"):
        name = acc.get("name")
        spec = {**BUILTIN.get(name, {}), **acc} if isinstance(name, str) else dict(acc)
        if not can_classify(spec) and regime in REGIMES:
            out.append(Issue(f"accelerators[{i}]", f"no export_class and no tpp for {name!r}: "
                             "treated as unrestricted", "warning"))

    clusters = {c["id"]: c for _, c in _items(data, "clusters") if isinstance(c.get("id"), str)}
    regions = {c.get("region") for c in clusters.values()}
    countries = {c.get("country") for c in clusters.values()}
    startups = {s["id"]: s for _, s in _items(data, "startups") if isinstance(s.get("id"), str)}
    jobs = {j["id"]: j for _, j in _items(data, "jobs") if isinstance(j.get("id"), str)}
    known = {"accelerator": known_acc, "cluster": set(clusters), "start-up": set(startups),
             "region": regions, "country": countries}

    def refs(loc: str, value: Any, kind: str, severity: str = "error") -> None:
        for k, ref in enumerate(_strs(value)):
            if ref not in known[kind]:
                out.append(Issue(f"{loc}[{k}]", f"unknown {kind} {ref!r}", severity))  # type: ignore[arg-type]

    for i, c in _items(data, "clusters"):
        seen_acc: dict[str, int] = {}
        for k, pool in _items(c, "pools"):
            loc = f"clusters[{i}].pools[{k}]"
            acc = pool.get("accelerator")
            if isinstance(acc, str):
                if acc not in known_acc:
                    out.append(Issue(f"{loc}.accelerator", f"unknown accelerator {acc!r}"))
                if acc in seen_acc:
                    out.append(Issue(f"{loc}.accelerator", f"second pool of {acc!r} in cluster "
                                     f"(first at pools[{seen_acc[acc]}])"))
                seen_acc[acc] = k
            for m, change in _items(pool, "capacity"):
                start = _int(change.get("from"))
                if periods is not None and start is not None and start >= periods:
                    out.append(Issue(f"{loc}.capacity[{m}].from", f"period {start} is past the "
                                     f"horizon ({periods} periods): no effect", "warning"))

    for i, s in _items(data, "startups"):
        refs(f"startups[{i}].regions", s.get("regions"), "region", "warning")

    graph: nx.DiGraph = nx.DiGraph()
    for i, job in _items(data, "jobs"):
        loc = f"jobs[{i}]"
        ident = job.get("id")
        startup = job.get("startup")
        if isinstance(startup, str) and startup not in startups:
            out.append(Issue(f"{loc}.startup", f"unknown start-up {startup!r}"))
        refs(f"{loc}.clusters", job.get("clusters"), "cluster")
        refs(f"{loc}.regions", job.get("regions"), "region", "warning")
        for k, dep in enumerate(_strs(job.get("after"))):
            if dep not in jobs:
                out.append(Issue(f"{loc}.after[{k}]", f"unknown job {dep!r}"))
            elif dep == ident:
                out.append(Issue(f"{loc}.after[{k}]", "a job cannot come after itself"))
            elif isinstance(ident, str):
                graph.add_edge(dep, ident)
        out.extend(_window_issues(loc, job, periods, known_acc))

    for cycle in _cycles(graph):
        first = cycle[0]
        index = next(i for i, j in _items(data, "jobs") if j.get("id") == first)
        out.append(Issue(f"jobs[{index}].after", "dependency cycle: " + " -> ".join(
            [*cycle, first])))

    for i, cap in _items(data, "caps"):
        loc = f"caps[{i}]"
        for scope_loc, scope in ((loc, cap), (f"{loc}.share_of", cap.get("share_of"))):
            if not isinstance(scope, Mapping):
                continue
            for field, kind in _SCOPE_REFS.items():
                refs(f"{scope_loc}.{field}", scope.get(field), kind)
            for field, kind in _SOFT_REFS.items():
                refs(f"{scope_loc}.{field}", scope.get(field), kind, "warning")
        window = cap.get("periods")
        if periods is not None and isinstance(window, list | tuple) and len(window) == 2:
            last = _int(window[1])
            if last is not None and last >= periods:
                out.append(Issue(f"{loc}.periods", f"window ends at period {last}, past the "
                                 f"horizon (last period {periods - 1})"))
    for i, rule in _items(data, "eligibility"):
        refs(f"eligibility[{i}].countries", rule.get("countries"), "country", "warning")
    return out


def _window_issues(loc: str, job: Mapping[str, Any], periods: int | None,
                   known_acc: set[str]) -> Iterator[Issue]:
    release = _int(job.get("release", 0))
    deadline = _int(job.get("deadline")) if job.get("deadline") is not None else periods
    if periods is not None and job.get("deadline") is not None and deadline is not None \
            and deadline > periods:
        yield Issue(f"{loc}.deadline", f"deadline {deadline} is past the horizon "
                    f"({periods} periods)")
        return
    if periods is not None and release is not None and release >= periods:
        yield Issue(f"{loc}.release", f"release {release} is not before the horizon end "
                    f"({periods})")
        return
    for k, opt in _items(job, "options"):
        acc = opt.get("accelerator")
        if isinstance(acc, str) and acc not in known_acc:
            yield Issue(f"{loc}.options[{k}].accelerator", f"unknown accelerator {acc!r}")
    if release is None or deadline is None:
        return
    options = list(_items(job, "options"))
    if isinstance(job.get("options"), list | tuple) and not job["options"]:
        yield Issue(f"{loc}.options", "a job needs at least one option")
    lengths = [(k, _int(o.get("periods"))) for k, o in options]
    unfit = [k for k, p in lengths if p is not None and release + p > deadline]
    if options and len(unfit) == len(options):
        yield Issue(f"{loc}.options", f"no option fits the window [{release}, {deadline}): "
                    "the shortest takes " f"{min(p for _, p in lengths if p)} periods")
    else:
        for k in unfit:
            p = dict(lengths)[k]
            yield Issue(f"{loc}.options[{k}].periods", f"{p} periods never fit the window "
                        f"[{release}, {deadline})", "warning")


def _cycles(graph: nx.DiGraph) -> list[list[str]]:
    out = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            sub = graph.subgraph(component)
            out.append([u for u, _ in nx.find_cycle(sub)])
    return out

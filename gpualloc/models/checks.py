"""Cross-field checks of an instance: references, duplicates, cycles, windows.

They run on the raw mapping (as loaded from YAML/JSON, or dumped from a model) and tolerate
malformed parts, so that a file with both type errors and dangling references gets every
problem reported in one pass. Whatever is not of the expected shape is skipped here (the
schema reports it); ``semantic_issues`` never raises on any input.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import Any, Literal

import networkx as nx

from .catalog import BUILTIN, DEFAULT_REGIME, REGIMES, can_classify
from .errors import Issue
from .errors import show_value as _q

Severity = Literal["error", "warning"]

_SCOPE_REFS = {"accelerators": "accelerator", "clusters": "cluster", "startups": "start-up"}
_SOFT_REFS = {"regions": "region", "countries": "country"}
_IDS = (("clusters", "id"), ("startups", "id"), ("jobs", "id"), ("caps", "id"),
        ("accelerators", "name"), ("eligibility", "id"))


def _items(data: Any, key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The mappings in the list ``data[key]`` with their indices (others are skipped)."""
    seq = data.get(key) if isinstance(data, Mapping) else None
    if isinstance(seq, list | tuple):
        for i, item in enumerate(seq):
            if isinstance(item, Mapping):
                yield i, item


def _strs(value: Any) -> list[tuple[int, str]]:
    """The strings of a list with their indices."""
    if isinstance(value, list | tuple):
        return [(k, v) for k, v in enumerate(value) if isinstance(v, str)]
    return []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _Hints:
    """`` (did you mean 'H800'?)``, `` (known: a, b)`` or ``''`` for an unknown name.

    Suggestions cost a fuzzy match against every known name, so they stop once ``budget``
    names have been compared (a file with thousands of dangling references stays fast).
    """

    def __init__(self, budget: int = 200_000) -> None:
        self.budget = budget
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, name: str, known: Collection[str], kind: str) -> str:
        key = (kind, name)
        if key in self.cache:
            return self.cache[key]
        if not known:
            return " (none are defined)"
        text = ""
        if len(known) <= self.budget and len(name) <= 100:
            self.budget -= len(known)
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            if close:
                text = f" (did you mean {_q(close[0])}?)"
        if not text and len(known) <= 6:
            text = f" (known: {', '.join(sorted(known))})"
        self.cache[key] = text
        return text


def _duplicates(data: Mapping[str, Any], key: str, field: str) -> Iterator[Issue]:
    seen: dict[str, int] = {}
    for i, item in _items(data, key):
        ident = _str(item.get(field))
        if ident is None:
            continue
        if ident in seen:
            what = "name" if field == "name" else "id"
            yield Issue(f"{key}[{i}].{field}",
                        f"duplicate {what} {_q(ident)} (first at {key}[{seen[ident]}])")
        else:
            seen[ident] = i


def semantic_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Every cross-field error and warning in a raw instance mapping."""
    if not isinstance(data, Mapping):
        return []
    out: list[Issue] = []
    hint = _Hints()
    for key, field in _IDS:
        out.extend(_duplicates(data, key, field))

    horizon = data.get("horizon")
    periods = _int(horizon.get("periods")) if isinstance(horizon, Mapping) else None
    if periods is not None and periods <= 0:
        periods = None  # the schema reports it; windows against it would only add noise
    regime = data.get("regime", DEFAULT_REGIME)

    known_acc = set(BUILTIN) | {n for _, a in _items(data, "accelerators")
                                if (n := _str(a.get("name"))) is not None}
    for i, acc in _items(data, "accelerators"):
        name = _str(acc.get("name"))
        spec = {**BUILTIN.get(name, {}), **acc} if name is not None else dict(acc)
        if not can_classify(spec) and isinstance(regime, str) and regime in REGIMES:
            out.append(Issue(f"accelerators[{i}]", f"no export_class and no tpp for {_q(name)}: "
                             "treated as unrestricted", "warning"))

    if not data.get("jobs"):  # absent, null or []: valid, but every plan is empty
        out.append(Issue("jobs", "the instance has no jobs: every plan is empty", "warning"))

    clusters = {c["id"]: c for _, c in _items(data, "clusters") if _str(c.get("id"))}
    startups = {s["id"]: s for _, s in _items(data, "startups") if _str(s.get("id"))}
    jobs = {j["id"]: j for _, j in _items(data, "jobs") if _str(j.get("id"))}
    known: dict[str, set[str]] = {
        "accelerator": known_acc,
        "cluster": set(clusters),
        "start-up": set(startups),
        "region": {r for c in clusters.values() if (r := _str(c.get("region")))},
        "country": {r for c in clusters.values() if (r := _str(c.get("country")))},
    }

    def refs(loc: str, value: Any, kind: str, severity: Severity = "error") -> None:
        for k, ref in _strs(value):
            if ref not in known[kind]:
                text = f"unknown {kind} {_q(ref)}{hint(ref, known[kind], kind)}"
                out.append(Issue(f"{loc}[{k}]", text, severity))

    for i, c in _items(data, "clusters"):
        out.extend(_pool_issues(f"clusters[{i}]", c, periods, known_acc, hint))

    for i, s in _items(data, "startups"):
        refs(f"startups[{i}].regions", s.get("regions"), "region", "warning")
        out.extend(_tranche_issues(f"startups[{i}]", s, periods))

    graph: nx.DiGraph = nx.DiGraph()
    first_index: dict[str, int] = {}
    for i, job in _items(data, "jobs"):
        loc = f"jobs[{i}]"
        ident = _str(job.get("id"))
        if ident is not None:
            first_index.setdefault(ident, i)
            graph.add_node(ident)
        startup = _str(job.get("startup"))
        if startup is not None and startup not in startups:
            text = f"unknown start-up {_q(startup)}{hint(startup, startups.keys(), 'start-up')}"
            out.append(Issue(f"{loc}.startup", text))
        refs(f"{loc}.clusters", job.get("clusters"), "cluster")
        refs(f"{loc}.regions", job.get("regions"), "region", "warning")
        listed: dict[str, int] = {}
        for k, dep in _strs(job.get("after")):
            if dep in listed:
                out.append(Issue(f"{loc}.after[{k}]", f"{_q(dep)} is listed twice (first at "
                                 f"after[{listed[dep]}])", "warning"))
                continue
            listed[dep] = k
            if dep == ident:
                out.append(Issue(f"{loc}.after[{k}]", "a job cannot come after itself"))
            elif dep not in jobs:
                out.append(Issue(f"{loc}.after[{k}]",
                                 f"unknown job {_q(dep)}{hint(dep, jobs.keys(), 'job')}"))
            elif ident is not None:
                graph.add_edge(dep, ident)
        out.extend(_window_issues(loc, job, periods, known_acc, hint))

    for cycle in _cycles(graph, first_index):
        out.append(Issue(f"jobs[{first_index[cycle[0]]}].after",
                         "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
                         + " (each job must end before the next one starts)"))

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
        length = _int(cap.get("length"))
        if periods is not None and cap.get("per") == "rolling" and length is not None \
                and length > periods:
            out.append(Issue(f"{loc}.length", f"{length} periods is longer than the horizon "
                             f"({periods}): the cap limits the whole horizon", "warning"))
    for i, rule in _items(data, "eligibility"):
        refs(f"eligibility[{i}].countries", rule.get("countries"), "country", "warning")
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _tranche_issues(loc: str, startup: Mapping[str, Any], periods: int | None) -> Iterator[Issue]:
    """Tranches: ``from`` strictly increasing and inside the horizon; ``credits``, when
    given, equal to their sum (negative amounts are the schema's to report)."""
    tranches = list(_items(startup, "tranches"))
    last: tuple[int, int] | None = None
    for m, tranche in tranches:
        start = _int(tranche.get("from"))
        if start is None:
            continue
        if periods is not None and start >= periods:
            yield Issue(f"{loc}.tranches[{m}].from", f"period {start} is past the horizon "
                        f"(last period {periods - 1})")
        if last is not None and start <= last[1]:
            yield Issue(f"{loc}.tranches[{m}].from", f"from {start} is not after "
                        f"tranches[{last[0]}].from {last[1]}: from must strictly increase")
        last = (m, start)
    amounts = [_number(t.get("credits")) for _, t in tranches]
    credits = _number(startup.get("credits"))
    raw = startup.get("tranches")
    if credits is None or not tranches or not isinstance(raw, list | tuple) \
            or len(tranches) != len(raw) or any(a is None or a < 0 for a in amounts):
        return
    total = math.fsum(a for a in amounts if a is not None)
    if abs(credits - total) > 1e-6 * max(1.0, abs(total)):
        yield Issue(f"{loc}.credits", f"credits {credits:.10g} differ from the sum of the "
                    f"tranches {total:.10g}")


def _pool_issues(loc: str, cluster: Mapping[str, Any], periods: int | None,
                 known_acc: set[str], hint: _Hints) -> Iterator[Issue]:
    seen_acc: dict[str, int] = {}
    for k, pool in _items(cluster, "pools"):
        ploc = f"{loc}.pools[{k}]"
        acc = _str(pool.get("accelerator"))
        if acc is not None:
            if acc not in known_acc:
                yield Issue(f"{ploc}.accelerator",
                            f"unknown accelerator {_q(acc)}{hint(acc, known_acc, 'accelerator')}")
            if acc in seen_acc:
                yield Issue(f"{ploc}.accelerator", f"second pool of {_q(acc)} in this cluster "
                            f"(first at pools[{seen_acc[acc]}]); merge them into one pool")
            else:
                seen_acc[acc] = k
        starts: dict[int, int] = {}
        for m, change in _items(pool, "capacity"):
            start = _int(change.get("from"))
            if start is None:
                continue
            if periods is not None and start >= periods:
                yield Issue(f"{ploc}.capacity[{m}].from", f"period {start} is past the "
                            f"horizon ({periods} periods): no effect", "warning")
            if start in starts:
                yield Issue(f"{ploc}.capacity[{m}].from", f"a second change from period {start} "
                            f"(first at capacity[{starts[start]}]): the later one wins",
                            "warning")
            else:
                starts[start] = m


def _window_issues(loc: str, job: Mapping[str, Any], periods: int | None,
                   known_acc: set[str], hint: _Hints) -> Iterator[Issue]:
    options = list(_items(job, "options"))
    for k, opt in options:
        acc = _str(opt.get("accelerator"))
        if acc is not None and acc not in known_acc:
            yield Issue(f"{loc}.options[{k}].accelerator",
                        f"unknown accelerator {_q(acc)}{hint(acc, known_acc, 'accelerator')}")
    raw_options = job.get("options")
    if isinstance(raw_options, list | tuple) and not raw_options:
        yield Issue(f"{loc}.options", "a job needs at least one option")

    release = _int(job.get("release", 0))
    given_deadline = job.get("deadline")
    deadline = periods if given_deadline is None else _int(given_deadline)
    window_ok = (release is not None and deadline is not None and release >= 0
                 and deadline >= 0)
    if periods is not None and given_deadline is not None and deadline is not None \
            and deadline > periods:
        yield Issue(f"{loc}.deadline", f"deadline {_q(deadline)} is past the horizon "
                    f"({periods} periods)")
        window_ok = False
    if periods is not None and release is not None and release >= periods:
        yield Issue(f"{loc}.release", f"release {_q(release)} is not before the horizon end "
                    f"({periods})")
        window_ok = False
    if not window_ok or not options:
        return
    assert release is not None and deadline is not None
    if deadline <= release:
        yield Issue(f"{loc}.deadline", f"deadline {deadline} is not after the release "
                    f"{release}: no option fits the window [{release}, {deadline})")
        return
    lengths = {k: p for k, o in options if (p := _int(o.get("periods"))) is not None and p > 0}
    fit = [k for k, p in lengths.items() if release + p <= deadline]
    unfit = [k for k, p in lengths.items() if release + p > deadline]
    if not fit and len(lengths) == len(options):
        span = deadline - release
        yield Issue(f"{loc}.options", f"no option fits the window [{release}, {deadline}) of "
                    f"{span} period{'s' * (span != 1)}: the shortest takes "
                    f"{min(lengths.values())} periods")
    elif fit:
        for k in unfit:
            yield Issue(f"{loc}.options[{k}].periods", f"{lengths[k]} periods never fit the "
                        f"window [{release}, {deadline}): this option is never used", "warning")


def _cycles(graph: nx.DiGraph, order: Mapping[Hashable, int]) -> list[list[str]]:
    """One named cycle per strongly connected component, starting at its first job."""
    out = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        start = min(component, key=lambda n: order.get(n, 0))
        cycle = [u for u, _ in nx.find_cycle(graph.subgraph(component), source=start)]
        # find_cycle may walk a path into the cycle first; rotate to its earliest job
        first = min(range(len(cycle)), key=lambda k: order.get(cycle[k], 0))
        out.append(cycle[first:] + cycle[:first])
    return sorted(out, key=lambda c: order.get(c[0], 0))

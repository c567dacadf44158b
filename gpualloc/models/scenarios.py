"""What-if scenarios: named lists of changes applied to a base instance.

A scenario file (YAML or JSON, safe loaders only)::

    scenarios:
      - name: cap-halves
        changes:
          - {kind: cap, id: restricted-cn, scale: 0.5}
      - name: more-h20
        changes:
          - {kind: pool_gpus, cluster: hz-1, accelerator: H20, add: 2000, from: 8}

Change kinds (``kind`` picks the model):

- ``cap``: ``id``, and ``set`` or ``scale`` of the cap's ``limit``; a share cap without a
  limit has its ``fraction`` scaled (at most 1) or, with ``set``, gains a limit. With
  ``from`` (per-period caps with a limit only), the new limit holds from that period on: the
  cap keeps the looser limit and gains one-period caps ``ID@t`` where the tighter one holds.
- ``pool_gpus``: ``cluster``, ``accelerator``, ``add`` GPUs (negative removes) from period
  ``from`` (default 0) until period ``until`` (exclusive, default: for good). The pool's
  capacity changes are rewritten so that ``gpus_at(t)`` grows by ``add`` in those periods,
  clamped at 0.
- ``add_cluster`` (``cluster``: a full cluster), ``remove_cluster`` (``id``; references to it
  in jobs' ``clusters`` and in cap scopes are dropped too), ``add_pool`` (``cluster``,
  ``pool``), ``remove_pool`` (``cluster``, ``accelerator``).
- ``credits``: ``startup`` (an id or ``all``), ``set`` or ``scale`` (unlimited credits stay
  unlimited under ``scale``).
- ``price``: optional ``cluster`` and ``accelerator`` filters, ``set`` or ``scale`` of
  ``price_per_gpu_hour`` of every pool that matches (at least one must).
- ``add_jobs`` (``jobs``: full jobs), ``remove_jobs`` (``ids``; jobs that depend on a removed
  job through ``after``, directly or not, are removed too and reported in the notes).
- ``regime``: ``regime`` (oct2022, oct2023 or jan2026).
- ``tranche``: ``startup``, ``index`` and ``set`` or ``scale`` of that tranche's credits (the
  start-up's ``credits`` become the new sum); ``tranche_shift``: ``startup``, ``index`` and
  ``by`` periods (negative: earlier) added to its ``from``. A ``credits`` change on a
  start-up with tranches scales all its tranches alike.

``apply`` returns a new validated instance and never touches the base (instances are frozen).
A change whose target does not exist is a located error such as
``scenarios[1].changes[0].id: unknown cap 'x'``, raised as ``InstanceError``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import Instance, InstanceError, Issue
from .instance import MAX_PERIODS, Cluster, Job, Pool, Regime
from .io import location, read_mapping, validation_issues

Factor = Annotated[float, Field(strict=True, ge=0, le=1e9, allow_inf_nan=False)]
Amount = Annotated[float, Field(strict=True, ge=0, le=1e18, allow_inf_nan=False)]
GpuDelta = Annotated[int, Field(strict=True, ge=-10_000_000, le=10_000_000)]
PeriodIndex = Annotated[int, Field(strict=True, ge=0, le=MAX_PERIODS)]


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)


class _SetOrScale(_Change):
    set: Amount | None = None
    scale: Factor | None = None

    @model_validator(mode="after")
    def _one(self) -> _SetOrScale:
        if (self.set is None) == (self.scale is None):
            raise ValueError("give exactly one of set or scale")
        return self

    def new(self, old: float) -> float:
        return float(self.set) if self.set is not None else old * float(self.scale or 0.0)


class CapChange(_SetOrScale):
    kind: Literal["cap"] = "cap"
    id: str
    from_: PeriodIndex | None = Field(None, alias="from")


class PoolGpusChange(_Change):
    kind: Literal["pool_gpus"] = "pool_gpus"
    cluster: str
    accelerator: str
    add: GpuDelta
    from_: PeriodIndex = Field(0, alias="from")
    until: PeriodIndex | None = None

    @model_validator(mode="after")
    def _order(self) -> PoolGpusChange:
        if self.until is not None and self.until <= self.from_:
            raise ValueError("until must be after from")
        return self


class AddClusterChange(_Change):
    kind: Literal["add_cluster"] = "add_cluster"
    cluster: Cluster


class RemoveClusterChange(_Change):
    kind: Literal["remove_cluster"] = "remove_cluster"
    id: str


class AddPoolChange(_Change):
    kind: Literal["add_pool"] = "add_pool"
    cluster: str
    pool: Pool


class RemovePoolChange(_Change):
    kind: Literal["remove_pool"] = "remove_pool"
    cluster: str
    accelerator: str


class CreditsChange(_SetOrScale):
    kind: Literal["credits"] = "credits"
    startup: str  # an id, or "all"


class TrancheChange(_SetOrScale):
    kind: Literal["tranche"] = "tranche"
    startup: str
    index: Annotated[int, Field(strict=True, ge=0)]


class TrancheShiftChange(_Change):
    kind: Literal["tranche_shift"] = "tranche_shift"
    startup: str
    index: Annotated[int, Field(strict=True, ge=0)]
    by: Annotated[int, Field(strict=True, ge=-MAX_PERIODS, le=MAX_PERIODS)]


class PriceChange(_SetOrScale):
    kind: Literal["price"] = "price"
    cluster: str | None = None
    accelerator: str | None = None


class AddJobsChange(_Change):
    kind: Literal["add_jobs"] = "add_jobs"
    jobs: tuple[Job, ...] = Field(min_length=1)


class RemoveJobsChange(_Change):
    kind: Literal["remove_jobs"] = "remove_jobs"
    ids: tuple[str, ...] = Field(min_length=1)


class RegimeChange(_Change):
    kind: Literal["regime"] = "regime"
    regime: Regime


Change = Annotated[
    CapChange | PoolGpusChange | AddClusterChange | RemoveClusterChange | AddPoolChange
    | RemovePoolChange | CreditsChange | PriceChange | AddJobsChange | RemoveJobsChange
    | RegimeChange | TrancheChange | TrancheShiftChange,
    Field(discriminator="kind"),
]
KINDS = ("cap", "pool_gpus", "add_cluster", "remove_cluster", "add_pool", "remove_pool",
         "credits", "price", "add_jobs", "remove_jobs", "regime", "tranche", "tranche_shift")


class Scenario(_Change):
    """A named list of changes to the base instance."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str | None = None
    changes: tuple[Change, ...] = ()


class ScenarioFile(_Change):
    scenarios: tuple[Scenario, ...]


# -- loading -------------------------------------------------------------------------------
def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator tag pydantic puts in error locations (``changes[0].cap.id``)."""
    out = []
    for k, part in enumerate(loc):
        if part in KINDS and k >= 2 and loc[k - 2] == "changes" and isinstance(loc[k - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _located(error: ValidationError, prefix: str = "") -> list[Issue]:
    """pydantic errors as issues, without discriminator tags in their locations."""
    out = []
    errors = error.errors(include_url=False)
    for issue, e in zip(validation_issues(error), errors, strict=True):
        loc = _strip_tags(tuple(p for p in e["loc"]
                                if not (isinstance(p, str) and p.startswith("function-"))))
        message = issue.message
        if e["type"] == "union_tag_invalid":
            tag = (e.get("ctx") or {}).get("tag")
            message = f"unknown change kind {tag!r}; choose from {', '.join(KINDS)}"
        elif e["type"] == "union_tag_not_found":
            message = f"a change needs a kind: one of {', '.join(KINDS)}"
        where = location(loc)
        if prefix:
            where = prefix + where if where.startswith("[") or not where else \
                f"{prefix}.{where}"
        out.append(Issue(where, message))
    return out


def named_changes(data: Any, key: str, file_model: type[BaseModel], item_model: type[BaseModel],
                  reserved: str, base: Instance | None) -> tuple[list[Any] | None,
                                                              list[tuple[int, Any]],
                                                              list[Issue]]:
    """Validate ``{key: [...]}``, a list of named change lists (scenarios, risks), reporting
    every problem at once: ``(parsed or None, the items that parse on their own with their
    index, issues)``. Names are unique and not ``reserved``; with ``base`` every item's changes
    are applied to it, so that unknown targets are reported with the file's other problems."""
    issues: list[Issue] = []
    parsed: list[Any] | None = None
    try:
        parsed = list(getattr(file_model.model_validate(data), key))
    except ValidationError as e:
        issues.extend(_located(e))
    raw = data.get(key) if isinstance(data, dict) else None
    candidates: list[tuple[int, Any]] = []
    if parsed is not None:
        candidates = list(enumerate(parsed))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            try:
                candidates.append((i, item_model.model_validate(item)))
            except ValidationError:
                continue
    seen: dict[str, int] = {}
    what = key[:-1]
    for i, item in candidates:
        if item.name == reserved:
            issues.append(Issue(f"{key}[{i}].name",
                                f"{reserved!r} is reserved for the unchanged instance"))
        elif item.name in seen:
            issues.append(Issue(f"{key}[{i}].name", f"duplicate {what} {item.name!r} "
                                f"(first at {key}[{seen[item.name]}])"))
        seen.setdefault(item.name, i)
        if base is not None:
            try:
                apply(base, item.changes, where=f"{key}[{i}].changes")
            except InstanceError as e:
                issues.extend(e.issues)
    return parsed, candidates, issues


def parse_scenarios(data: Any, source: str | None = None,
                    base: Instance | None = None) -> list[Scenario]:
    """Validate a raw mapping ``{scenarios: [...]}``, reporting every problem at once.

    With ``base``, every scenario is also applied to it, so that unknown targets are reported
    together with the file's other problems.
    """
    parsed, _, issues = named_changes(data, "scenarios", ScenarioFile, Scenario, BASE_NAME,
                                      base)
    if issues or parsed is None:
        raise InstanceError(issues, source)
    return parsed


def load_scenarios(path: str | Path, base: Instance | None = None) -> list[Scenario]:
    """Read and validate a scenario file (YAML or JSON); with ``base``, check the targets."""
    return parse_scenarios(read_mapping(path, what="scenario"), str(path), base)


BASE_NAME = "base"


# -- applying ------------------------------------------------------------------------------
def apply(instance: Instance, changes: Iterable[Any], *, where: str = "changes") -> Instance:
    """A new validated instance: ``instance`` with ``changes`` applied in order.

    ``changes`` are change models or raw mappings; ``where`` prefixes error locations
    (``scenarios[1].changes``). The base instance is never modified.
    """
    return apply_with_notes(instance, changes, where=where)[0]


def apply_with_notes(instance: Instance, changes: Iterable[Any], *,
                     where: str = "changes") -> tuple[Instance, list[str]]:
    """Like ``apply``, also returning notes on side effects (dependents removed, ...)."""
    parsed = _parse_changes(changes, where)
    data = copy.deepcopy(instance.model_dump(by_alias=True))
    issues: list[Issue] = []
    notes: list[str] = []
    for k, change in enumerate(parsed):
        _apply_one(data, change, f"{where}[{k}]", issues, notes)
    if issues:
        raise InstanceError(issues)
    try:
        new = Instance.model_validate(data)
    except ValidationError as e:
        raise InstanceError([Issue(f"{where} (resulting instance) {i.location}".rstrip(),
                                   i.message) for i in validation_issues(e)]) from None
    except InstanceError as e:
        raise InstanceError([Issue(f"{where} (resulting instance) {i.location}".rstrip(),
                                   i.message, i.severity) for i in e.issues]) from None
    return new, notes


def _parse_changes(changes: Iterable[Any], where: str) -> list[Any]:
    raw = list(changes)
    if all(isinstance(c, BaseModel) for c in raw):
        return raw
    try:
        holder = _ChangeList.model_validate({"changes": raw})
    except ValidationError as e:
        issues = []
        for issue in _located(e):
            loc = issue.location.removeprefix("changes")
            issues.append(Issue(where + loc, issue.message))
        raise InstanceError(issues) from None
    return list(holder.changes)


class _ChangeList(_Change):
    changes: tuple[Change, ...]


def _find(items: list[dict[str, Any]], key: str, value: Any) -> int | None:
    return next((i for i, item in enumerate(items) if item.get(key) == value), None)


def _apply_one(data: dict[str, Any], ch: Any, loc: str, issues: list[Issue],
               notes: list[str]) -> None:
    clusters: list[dict[str, Any]] = list(data.get("clusters") or [])
    data["clusters"] = clusters

    def pool_of(cluster_id: str, accelerator: str) -> dict[str, Any] | None:
        ci = _find(clusters, "id", cluster_id)
        if ci is None:
            issues.append(Issue(f"{loc}.cluster", f"unknown cluster {cluster_id!r}"))
            return None
        pools = clusters[ci].get("pools") or []
        pi = _find(list(pools), "accelerator", accelerator)
        if pi is None:
            issues.append(Issue(f"{loc}.accelerator", f"cluster {cluster_id!r} has no "
                                f"{accelerator!r} pool"))
            return None
        return pools[pi]

    if isinstance(ch, CapChange):
        caps = list(data.get("caps") or [])
        ci = _find(caps, "id", ch.id)
        if ci is None:
            issues.append(Issue(f"{loc}.id", f"unknown cap {ch.id!r}"))
            return
        cap = dict(caps[ci])
        if ch.from_ is not None:
            _cap_from(data, caps, ci, ch, loc, issues)
            return
        if cap.get("limit") is not None:
            cap["limit"] = ch.new(cap["limit"])
        elif ch.set is not None:
            cap["limit"] = float(ch.set)
        else:
            cap["fraction"] = min(1.0, ch.new(cap["fraction"]))
        caps[ci] = cap
        data["caps"] = caps
    elif isinstance(ch, PoolGpusChange):
        pool = pool_of(ch.cluster, ch.accelerator)
        periods = int((data.get("horizon") or {}).get("periods") or 0)
        if periods and ch.from_ >= periods:
            issues.append(Issue(f"{loc}.from", f"period {ch.from_} is past the horizon "
                                f"(periods 0..{periods - 1}): the change would do nothing"))
        elif pool is not None:
            _add_gpus(pool, ch.add, ch.from_, ch.until)
    elif isinstance(ch, AddClusterChange):
        if _find(clusters, "id", ch.cluster.id) is not None:
            issues.append(Issue(f"{loc}.cluster.id", f"cluster {ch.cluster.id!r} exists"))
            return
        clusters.append(ch.cluster.model_dump(by_alias=True))
    elif isinstance(ch, RemoveClusterChange):
        ci = _find(clusters, "id", ch.id)
        if ci is None:
            issues.append(Issue(f"{loc}.id", f"unknown cluster {ch.id!r}"))
            return
        del clusters[ci]
        for job in data.get("jobs") or []:
            if job.get("clusters") is not None and ch.id in job["clusters"]:
                job["clusters"] = tuple(c for c in job["clusters"] if c != ch.id)
                if not job["clusters"]:
                    notes.append(f"job {job['id']} could only run on {ch.id}: it can no "
                                 "longer run")
        for cap in data.get("caps") or []:
            for scope in (cap, cap.get("share_of")):
                if scope and scope.get("clusters") is not None and ch.id in scope["clusters"]:
                    scope["clusters"] = tuple(c for c in scope["clusters"] if c != ch.id)
    elif isinstance(ch, AddPoolChange):
        ci = _find(clusters, "id", ch.cluster)
        if ci is None:
            issues.append(Issue(f"{loc}.cluster", f"unknown cluster {ch.cluster!r}"))
            return
        pools = list(clusters[ci].get("pools") or [])
        if _find(pools, "accelerator", ch.pool.accelerator) is not None:
            issues.append(Issue(f"{loc}.pool.accelerator", f"cluster {ch.cluster!r} already "
                                f"has a {ch.pool.accelerator!r} pool"))
            return
        pools.append(ch.pool.model_dump(by_alias=True))
        clusters[ci]["pools"] = pools
    elif isinstance(ch, RemovePoolChange):
        if pool_of(ch.cluster, ch.accelerator) is not None:
            ci = _find(clusters, "id", ch.cluster)
            assert ci is not None
            clusters[ci]["pools"] = [p for p in clusters[ci]["pools"]
                                     if p["accelerator"] != ch.accelerator]
    elif isinstance(ch, CreditsChange):
        startups = data.get("startups") or []
        targets = startups if ch.startup == "all" else \
            [s for s in startups if s.get("id") == ch.startup]
        if not targets:
            issues.append(Issue(f"{loc}.startup", f"unknown start-up {ch.startup!r}"))
            return
        for s in targets:
            if s.get("tranches"):
                _scale_tranches(s, ch)
            elif ch.set is not None:
                s["credits"] = float(ch.set)
            elif s.get("credits") is not None:
                s["credits"] = ch.new(s["credits"])
    elif isinstance(ch, TrancheChange | TrancheShiftChange):
        _change_tranche(data, ch, loc, issues)
    elif isinstance(ch, PriceChange):
        if ch.cluster is not None and _find(clusters, "id", ch.cluster) is None:
            issues.append(Issue(f"{loc}.cluster", f"unknown cluster {ch.cluster!r}"))
            return
        hit = 0
        for c in clusters:
            if ch.cluster is not None and c["id"] != ch.cluster:
                continue
            for p in c.get("pools") or []:
                if ch.accelerator is None or p["accelerator"] == ch.accelerator:
                    p["price_per_gpu_hour"] = ch.new(p["price_per_gpu_hour"])
                    hit += 1
        if not hit:
            where_ = f" in cluster {ch.cluster!r}" if ch.cluster else ""
            issues.append(Issue(f"{loc}.accelerator", f"no {ch.accelerator!r} pool{where_}"))
    elif isinstance(ch, AddJobsChange):
        jobs = list(data.get("jobs") or [])
        known = {j["id"] for j in jobs}
        for k, job in enumerate(ch.jobs):
            if job.id in known:
                issues.append(Issue(f"{loc}.jobs[{k}].id", f"job {job.id!r} exists"))
                continue
            known.add(job.id)
            jobs.append(job.model_dump(by_alias=True))
        data["jobs"] = jobs
    elif isinstance(ch, RemoveJobsChange):
        jobs = list(data.get("jobs") or [])
        known = {j["id"] for j in jobs}
        bad = [k for k, j in enumerate(ch.ids) if j not in known]
        for k in bad:
            issues.append(Issue(f"{loc}.ids[{k}]", f"unknown job {ch.ids[k]!r}"))
        if bad:
            return
        gone = set(ch.ids)
        grew = True
        while grew:
            grew = False
            for j in jobs:
                if j["id"] not in gone and any(d in gone for d in j.get("after") or ()):
                    gone.add(j["id"])
                    grew = True
                    notes.append(f"job {j['id']} removed too: it depends on a removed job")
        data["jobs"] = [j for j in jobs if j["id"] not in gone]
    elif isinstance(ch, RegimeChange):
        data["regime"] = ch.regime
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown change {ch!r}")


def _scale_tranches(startup: dict[str, Any], ch: CreditsChange) -> None:
    """A credits change on a start-up with tranches scales every tranche alike (``set``: to
    the new total; from a total of 0 the first tranche gets it all)."""
    tranches = [dict(t) for t in startup["tranches"]]
    old = math.fsum(t["credits"] for t in tranches)
    new = ch.new(old)
    if old > 0:
        for t in tranches:
            t["credits"] = t["credits"] * new / old
    else:
        tranches[0]["credits"] = new
    startup["tranches"] = tranches
    startup["credits"] = math.fsum(t["credits"] for t in tranches)


def _change_tranche(data: dict[str, Any], ch: TrancheChange | TrancheShiftChange, loc: str,
                    issues: list[Issue]) -> None:
    """``tranche``: set or scale one tranche's credits (the start-up's credits follow);
    ``tranche_shift``: move its release ``by`` periods (the result is checked like a file)."""
    startups = data.get("startups") or []
    si = _find(startups, "id", ch.startup)
    if si is None:
        issues.append(Issue(f"{loc}.startup", f"unknown start-up {ch.startup!r}"))
        return
    tranches = [dict(t) for t in startups[si].get("tranches") or ()]
    if ch.index >= len(tranches):
        issues.append(Issue(f"{loc}.index", f"start-up {ch.startup!r} has "
                            f"{len(tranches)} tranche{'s' * (len(tranches) != 1)}, "
                            f"no tranche {ch.index}"))
        return
    t = tranches[ch.index]
    if isinstance(ch, TrancheChange):
        t["credits"] = ch.new(t["credits"])
        startups[si]["credits"] = math.fsum(x["credits"] for x in tranches)
    elif t["from"] + ch.by < 0:
        issues.append(Issue(f"{loc}.by", f"moves tranche {ch.index} of {ch.startup!r} from "
                            f"period {t['from']} to {t['from'] + ch.by}, before period 0"))
        return
    else:
        t["from"] = t["from"] + ch.by
    startups[si]["tranches"] = tranches


def _cap_from(data: dict[str, Any], caps: list[dict[str, Any]], ci: int, ch: CapChange,
              loc: str, issues: list[Issue]) -> None:
    """A per-period cap's limit changed from period ``ch.from_`` on (see ``cap`` above)."""
    cap = dict(caps[ci])
    if cap.get("per", "period") != "period" or cap.get("limit") is None:
        issues.append(Issue(f"{loc}.from", "from needs a per-period cap with a limit"))
        return
    old, new = float(cap["limit"]), ch.new(cap["limit"])
    horizon = int(data["horizon"]["periods"])
    tight = range(ch.from_, horizon) if new < old else range(min(ch.from_, horizon))
    cap["limit"] = max(old, new)
    extra = [{**cap, "id": f"{ch.id}@{t}", "per": "window", "periods": (t, t),
              "limit": min(old, new)} for t in tight]
    data["caps"] = [*caps[:ci], cap, *caps[ci + 1:], *extra]


def _add_gpus(pool: dict[str, Any], add: int, start: int, until: int | None) -> None:
    """Rewrite the pool so ``gpus_at(t)`` grows by ``add`` (clamped at 0) on [start, until)."""
    changes = [(int(c["from"]), int(c["gpus"])) for c in pool.get("capacity") or ()]

    def old(t: int) -> int:
        gpus = int(pool["gpus"])
        for f, g in sorted(changes):
            if f <= t:
                gpus = g
        return gpus

    def new(t: int) -> int:
        inside = t >= start and (until is None or t < until)
        return max(0, old(t) + add) if inside else old(t)

    points = sorted({0, start, *(f for f, _ in changes), *(() if until is None else (until,))})
    pool["gpus"] = new(0)
    out = []
    last = pool["gpus"]
    for t in points[1:]:
        g = new(t)
        if g != last:
            out.append({"from": t, "gpus": g})
            last = g
    pool["capacity"] = tuple(out)


def describe(instance: Instance) -> dict[str, Any]:
    """A short summary of an instance: counts, GPUs, credits, caps (plain JSON)."""
    credits = [s.credits for s in instance.startups]
    return {
        "clusters": len(instance.clusters),
        "pools": sum(len(c.pools) for c in instance.clusters),
        "gpus_period0": sum(p.gpus_at(0) for c in instance.clusters for p in c.pools),
        "jobs": len(instance.jobs),
        "startups": len(instance.startups),
        "credits": None if any(c is None for c in credits) else sum(c or 0.0 for c in credits),
        "caps": {c.id: c.limit for c in instance.caps},
        "regime": instance.regime,
    }


def changes_of(items: Sequence[Any]) -> list[Any]:
    """Validate raw change mappings into change models (errors located at ``changes[k]``)."""
    return _parse_changes(items, "changes")


__all__ = [
    "BASE_NAME",
    "KINDS",
    "AddClusterChange",
    "AddJobsChange",
    "AddPoolChange",
    "CapChange",
    "Change",
    "CreditsChange",
    "PoolGpusChange",
    "PriceChange",
    "RegimeChange",
    "RemoveClusterChange",
    "RemoveJobsChange",
    "RemovePoolChange",
    "Scenario",
    "TrancheChange",
    "TrancheShiftChange",
    "apply",
    "apply_with_notes",
    "changes_of",
    "describe",
    "load_scenarios",
    "parse_scenarios",
]

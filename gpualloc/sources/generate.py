"""Realistic synthetic instances, with job shapes fitted from real GPU-cluster traces.

``generate(clusters, startups, jobs, periods, seed)`` builds an instance (weekly periods) that
uses every feature of the format, deterministically in ``seed``:

- **Clusters** in up to seven regions (CN, SG, MY, US), each with two or three pools of H800,
  H20, Ascend910B (CN), H100/H20/H200 (SG, MY) or H100/H200/B200 (US); prices per GPU-hour
  by chip (+-10 % per cluster); Ascend pools take gangs of at most 1,024 GPUs. Pools are sized
  from the demand that the jobs' preferred chips route to them (``OVERLOAD`` = twice as many
  GPU-periods are asked as exist; at least 256 GPUs); where no pool a job may use takes its
  gang, the largest one grows to it (a "flagship" pool). **Capacity changes**: deliveries
  (a pool has 75 % of its size first and 130 % from a period on) and outages (a pool halves
  for one or two periods).
- **Start-ups** with headquarters (CN, US or SG), regions that follow the headquarters (a
  CN start-up may also train offshore in SG/MY), weights, credit budgets that **bind** (40-70 %
  of what the start-up's jobs would cost at their cheapest) and, for about one in ten CN
  start-ups, ``restricted: [3A090.a]`` (entity-listed: H20 only).
- **Jobs** whose gang sizes, durations and arrivals come from ``gpualloc/sources/data/
  trace_params.json`` (fitted once by ``scripts/fit_traces.py`` from the Microsoft Philly and
  Alibaba openb traces): gangs are the Philly power-of-two buckets (85 %) or the Alibaba
  multi-GPU buckets (15 %: fine-tuning and evaluation), times ``GANG_SCALE`` and a per-start-up
  scale (so the largest reach 256-2,048 GPUs); durations are Philly log-normal runtimes
  stretched by ``DURATION_SCALE`` (a Philly minute becomes ``DURATION_SCALE`` minutes of
  start-up training), in whole weeks, at least one, truncated at a quarter of the horizon;
  releases follow the Philly arrival profile over the horizon (15 % are a backlog released at
  0); deadlines leave a slack of 0 to ``2 * max(2, periods // 6)`` periods (5 % have none).
  **Alternatives**: 1-3 options per job (mostly 2-3): the preferred chip, and slower or
  faster chips with GPUs and periods scaled by relative training throughput (e.g. H800 1,024
  GPUs x 2 weeks or H20 2,048 GPUs x 3 weeks, at 85-100 % of the value). **Dependencies**:
  chains within a start-up (a quarter of the jobs follow the start-up's previous job;
  acyclic, the follower released after its predecessor can end). Jobs are restricted to two or
  three clusters of their start-up's regions (data locality) or to one region.
- **Mandatory** jobs: about 1 % (at least one, at most 40), chosen among jobs without
  dependencies and proven to fit together: a witness plan that runs exactly them passes the
  validator before they are marked.
- **Caps** of every kind: per-period TPP on 3A090.a in CN (half the CN 3A090.a pools' TPP);
  horizon GPU-hours of CN start-ups offshore (30 % of what their jobs could run there); a
  rolling four-period GPU cap on H20 in CN (half the CN H20 pools); a window GPU cap on
  Ascend910B in the first third of the horizon (40 % of the Ascend pools); a share cap (CN
  start-ups' offshore GPU-hours at most 30 % of all their GPU-hours). **Eligibility**:
  CN-headquartered start-ups may not use 3A090.a chips outside CN.

The time-indexed formulation has one binary per job, option, allowed cluster and start, so
cluster restrictions and deadline slack keep it small: about 6k binaries for the ``medium``
tier, 130k for ``large`` and 0.86M for ``huge``.

``TIERS`` are the benchmark sizes behind ``gpualloc bench --tier``; ``tier_instance(name)``
generates one. The fitted parameters are read from the package (``trace_params()``), never
from the traces. No solver is imported here.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import random
from collections import defaultdict
from functools import lru_cache
from importlib import resources
from typing import Any

from ..models.catalog import BUILTIN, classify
from ..models.instance import Instance
from ..models.plan import Assignment, Plan, SolveStatus
from ..models.validator import validate

PARAMS_FILE = "trace_params.json"
GANG_SCALE = 16  # a Philly 4-GPU job becomes a 64-GPU start-up job, 128 GPUs become 2,048
MAX_GANG = 2048
MIN_GANG = 16
DURATION_SCALE = 24.0  # a Philly hour of runtime becomes a day of start-up training
PERIOD_HOURS = 168.0
OVERLOAD = 2.0  # GPU-periods asked per GPU-period available
START_DATE = dt.date(2026, 1, 5)

# (region, country, pool accelerators; the first is in every cluster of the region)
REGIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("cn-east", "CN", ("H20", "H800", "Ascend910B")),
    ("sg-1", "SG", ("H100", "H20", "H200")),
    ("us-west", "US", ("H100", "H200", "B200")),
    ("cn-north", "CN", ("H20", "Ascend910B", "H800")),
    ("my-johor", "MY", ("H100", "H20", "H200")),
    ("cn-south", "CN", ("H20", "Ascend910B")),
    ("us-east", "US", ("H100", "B200", "H200")),
)
# Relative training throughput per GPU (H100 = 1): sets the alternatives' GPUs and periods.
THROUGHPUT = {"H100": 1.0, "H800": 0.9, "H200": 1.25, "B200": 2.25, "H20": 0.3,
              "Ascend910B": 0.55}
# Credits per GPU-hour (list price; each cluster is within +-10 %).
PRICE = {"H100": 2.5, "H800": 2.1, "H200": 3.2, "B200": 4.8, "H20": 0.9, "Ascend910B": 1.3}
# How much a start-up prefers each chip as a job's first option.
PREFERENCE = {"H100": 3.0, "H800": 3.0, "H200": 3.0, "B200": 2.0, "H20": 1.0,
              "Ascend910B": 1.5}
# The chips that are 3A090.a under the default regime (all but the H20).
RESTRICTED = frozenset(a for a in THROUGHPUT if classify(BUILTIN[a]) == "3A090.a")

TIERS: dict[str, dict[str, Any]] = {
    "medium": dict(clusters=8, startups=12, jobs=400, periods=26, seed=101),
    "large": dict(clusters=20, startups=40, jobs=3000, periods=52, seed=202),
    # the large tier's shape with wide windows (~250 placements per job, ~750k in all): what
    # users send, and the size the time limits and interrupts are measured on
    "large-wide": dict(clusters=20, startups=40, jobs=3000, periods=52, seed=202,
                       windows="wide"),
    "huge": dict(clusters=40, startups=100, jobs=20000, periods=52, seed=303),
}
WINDOWS = ("narrow", "wide")


@lru_cache(maxsize=1)
def _params_text() -> str:
    return (resources.files("gpualloc.sources") / "data" / PARAMS_FILE).read_text(encoding="utf-8")


def trace_params() -> dict[str, Any]:
    """The fitted trace parameters shipped with the package (a fresh copy)."""
    return copy.deepcopy(_loaded())


@lru_cache(maxsize=1)
def _loaded() -> dict[str, Any]:
    return json.loads(_params_text())


def tier_instance(name: str) -> Instance:
    """The benchmark instance of tier ``name`` (one of ``TIERS``)."""
    if name not in TIERS:
        raise ValueError(f"unknown tier {name!r}; choose from {', '.join(TIERS)}")
    return generate(**TIERS[name])


def _pick(rng: random.Random, values: list[Any], weights: list[float]) -> Any:
    return rng.choices(values, weights=weights, k=1)[0]


def _round_gpus(x: float, unit: int = 64) -> int:
    return max(unit, unit * math.ceil(x / unit))


class _Shapes:
    """Samplers of gang size, duration and release from the fitted parameters."""

    def __init__(self, rng: random.Random, periods: int) -> None:
        p = _loaded()
        philly, alibaba = p["philly"], p["alibaba_openb"]
        self.rng = rng
        self.periods = periods
        self.philly_gangs = (philly["gang_sizes"]["buckets"], philly["gang_sizes"]["probs"])
        self.alibaba_gangs = (alibaba["multigpu50_gang_sizes"]["buckets"],
                              alibaba["multigpu50_gang_sizes"]["probs"])
        runtime = philly["runtime_minutes"]
        self.mu, self.sigma = runtime["mu"], runtime["sigma"]
        profile = philly["arrivals"]["span_profile"]
        # smoothed: a fifth of the arrival mass spread evenly, so no slice of the horizon is
        # empty just because the trace was ramping up there
        self.profile = [0.8 * w + 0.2 / len(profile) for w in profile]
        self.max_len = max(2, periods // 4)

    def gang(self, scale: float) -> int:
        buckets, probs = self.philly_gangs if self.rng.random() < 0.85 else self.alibaba_gangs
        size = _pick(self.rng, buckets, probs) * GANG_SCALE * scale
        return int(min(MAX_GANG, max(MIN_GANG, size)))

    def duration(self) -> int:
        """Weeks of training: a Philly runtime stretched by DURATION_SCALE, truncated."""
        for _ in range(50):
            minutes = self.rng.lognormvariate(self.mu, self.sigma)
            weeks = math.ceil(minutes * DURATION_SCALE / 60.0 / PERIOD_HOURS)
            if weeks <= self.max_len:
                return max(1, weeks)
        return self.max_len

    def release(self) -> int:
        if self.rng.random() < 0.15:
            return 0  # backlog waiting when the horizon starts
        k = _pick(self.rng, list(range(len(self.profile))), self.profile)
        frac = (k + self.rng.random()) / len(self.profile)
        return min(self.periods - 1, int(frac * self.periods))


def generate(clusters: int, startups: int, jobs: int, periods: int, seed: int = 0,
             windows: str = "narrow") -> Instance:
    """A realistic synthetic instance using every feature, deterministic in ``seed``.

    ``clusters`` >= 1, ``startups`` >= 1, ``jobs`` >= 0 and ``periods`` >= 2 (weeks).
    ``windows``: ``"narrow"`` (the default: deadlines a few periods after the earliest end) or
    ``"wide"``: releases in the first quarter of the horizon and no deadline before its end,
    so each option may start in most periods (about 250 placements per job at 52 periods).
    """
    if windows not in WINDOWS:
        raise ValueError(f"windows must be one of {', '.join(WINDOWS)}, got {windows!r}")
    for name, value, least in (("clusters", clusters, 1), ("startups", startups, 1),
                               ("jobs", jobs, 0), ("periods", periods, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    rng = random.Random(f"gpualloc-generate:{seed}")
    shapes = _Shapes(rng, periods)

    # -- clusters and pools (sized later, from demand) -------------------------------------
    n_regions = min(len(REGIONS), clusters, max(3, math.ceil(clusters / 2)))
    regions = REGIONS[:n_regions]
    country_of = {r: c for r, c, _ in regions}
    cluster_list: list[dict[str, Any]] = []
    count: dict[str, int] = defaultdict(int)
    for c in range(clusters):
        region, country, palette = regions[c % n_regions]
        count[region] += 1
        if count[region] == 1:
            accs = list(palette)
        else:
            accs = [palette[0], *rng.sample(palette[1:], rng.randint(1, len(palette) - 1))]
        pools = []
        for acc in accs:
            pool: dict[str, Any] = {
                "accelerator": acc, "gpus": 0,
                "price_per_gpu_hour": round(PRICE[acc] * rng.choice((0.9, 1.0, 1.1)), 2)}
            if acc == "Ascend910B":
                pool["max_gpus_per_job"] = 1024
            pools.append(pool)
        cluster_list.append({"id": f"{region}-{count[region]}", "region": region,
                             "country": country, "pools": pools})
    pools_of = {c["id"]: {p["accelerator"]: p for p in c["pools"]} for c in cluster_list}
    clusters_in: dict[str, list[str]] = defaultdict(list)
    for c in cluster_list:
        clusters_in[c["region"]].append(c["id"])
    cluster_country = {c["id"]: c["country"] for c in cluster_list}
    offshore_regions = [r for r, c, _ in regions if c in ("SG", "MY")]
    countries = sorted({c for _, c, _ in regions})
    offshore_countries = [c for c in countries if c != "CN"]

    # -- start-ups ----------------------------------------------------------------------------
    startup_list: list[dict[str, Any]] = []
    scale_of: dict[str, float] = {}
    size_of: dict[str, float] = {}
    for s in range(startups):
        hq = ("CN", "US", "SG", "CN")[s] if s < 4 else _pick(rng, ["CN", "US", "SG"],
                                                              [0.55, 0.25, 0.2])
        home = [r for r, c, _ in regions if c == hq] or [r for r, _, _ in regions]
        chosen = rng.sample(home, min(len(home), rng.randint(1, 2)))
        if hq == "CN" and offshore_regions and (s == 0 or rng.random() < 0.5):
            chosen.append(rng.choice(offshore_regions))
        elif hq == "US" and "sg-1" in country_of and rng.random() < 0.3:
            chosen.append("sg-1")
        elif hq == "SG" and offshore_regions and rng.random() < 0.5:
            chosen.append(rng.choice(offshore_regions))
        sid = f"s{s:03d}"
        startup: dict[str, Any] = {
            "id": sid, "name": f"Start-up {s}", "headquarters": hq,
            "weight": rng.choice((0.5, 1.0, 1.0, 1.5, 2.0)),
            "regions": sorted(set(chosen), key=[r for r, _, _ in regions].index)}
        # entity-listed: no 3A090.a at all (a CN start-up with CN regions, so H20 remains)
        if hq == "CN" and s > 0 and (s == 3 or rng.random() < 0.1):
            startup["restricted"] = ["3A090.a"]
        startup_list.append(startup)
        scale_of[sid] = rng.choice((0.5, 1.0, 1.0, 2.0))
        size_of[sid] = rng.lognormvariate(0.0, 0.6)

    def eligible(startup: dict[str, Any], acc: str, cluster: str) -> bool:
        if acc in RESTRICTED and "3A090.a" in startup.get("restricted", ()):
            return False
        return not (acc in RESTRICTED and startup["headquarters"] == "CN"
                    and cluster_country[cluster] != "CN")

    # -- jobs per start-up ---------------------------------------------------------------------
    counts = [0] * startups
    total = sum(size_of.values())
    order = list(range(startups))
    for s in order[: min(jobs, startups)]:
        counts[s] = 1
    shares = [size_of[st["id"]] / total for st in startup_list]
    for _ in range(jobs - sum(counts)):
        counts[_pick(rng, order, shares)] += 1

    # Pass 1: job shapes, releases and preferred chips; the demand this routes to each pool.
    demand: dict[tuple[str, str], float] = defaultdict(float)
    drafts: dict[str, list[dict[str, Any]]] = {}
    for s, startup in enumerate(startup_list):
        sid = startup["id"]
        allowed = [c for r in startup["regions"] for c in clusters_in[r]]
        pairs = [(acc, c) for c in allowed for acc in pools_of[c] if eligible(startup, acc, c)]
        accs = sorted({acc for acc, _ in pairs}, key=list(THROUGHPUT).index)
        mine: list[dict[str, Any]] = []
        for _ in range(counts[s]):
            d = {"gpus": shapes.gang(scale_of[sid]), "periods": shapes.duration(),
                 "release": shapes.release()}
            if accs:
                d["first"] = _pick(rng, accs, [PREFERENCE[a] for a in accs])
                homes = [c for acc, c in pairs if acc == d["first"]]
                for c in homes:
                    demand[(c, d["first"])] += d["gpus"] * d["periods"] / len(homes)
            mine.append(d)
        mine.sort(key=lambda d: d["release"])
        drafts[sid] = mine

    # Pass 2: pools sized from their demand (OVERLOAD times more is asked than exists).
    size_of_pool: dict[tuple[str, str], int] = {}
    for c in cluster_list:
        for pool in c["pools"]:
            key = (c["id"], pool["accelerator"])
            size_of_pool[key] = _round_gpus(max(demand.get(key, 0.0) / periods / OVERLOAD, 256))

    # Pass 3: where each job may run (a cluster whose pool takes its gang: the largest such
    # pool grows when none does), its alternatives, dependencies and window.
    job_list: list[dict[str, Any]] = []
    cheapest_cost: dict[str, float] = {}
    offshore_need = 0.0  # GPU-periods of CN start-ups' jobs that could run offshore
    slack_half = max(2, periods // 6)
    for startup in startup_list:
        sid = startup["id"]
        allowed = [c for r in startup["regions"] for c in clusters_in[r]]
        previous: list[dict[str, Any]] = []
        for n, d in enumerate(drafts[sid]):
            jid = f"{sid}-j{n:04d}"
            job: dict[str, Any] = {"id": jid, "startup": sid}
            gpus, length, first = d["gpus"], d["periods"], d.get("first")
            homes = [c for c in allowed if first in pools_of[c] and eligible(startup, first, c)]
            fits = [c for c in homes if size_of_pool[(c, first)] >= gpus]
            if homes and not fits:
                c = max(homes, key=lambda c: (size_of_pool[(c, first)], -homes.index(c)))
                size_of_pool[(c, first)] = _round_gpus(gpus)
                fits = [c]
            # data locality: two or three clusters, or a single region, with a fitting one
            mine = allowed
            anchor = rng.choice(fits) if fits else None
            anchor_region = next(cl["region"] for cl in cluster_list
                                 if cl["id"] == anchor) if anchor else None
            if rng.random() < 0.1 and len(startup["regions"]) > 1:
                region = anchor_region or rng.choice(startup["regions"])
                job["regions"] = [region]
                mine = list(clusters_in[region])
            elif len(allowed) > 3:
                rest = [c for c in allowed if c != anchor]
                picked = rng.sample(rest, rng.randint(2, 3) - (anchor is not None))
                mine = sorted([*picked, *([anchor] if anchor else [])], key=allowed.index)
                job["clusters"] = mine
            if first is None:  # nothing eligible for this start-up: never placeable
                first = sorted({a for c in mine for a in pools_of[c]},
                               key=list(THROUGHPUT).index)[0]
            options = [{"accelerator": first, "gpus": gpus, "periods": length}]
            others = [a for a in sorted({acc for c in mine for acc in pools_of[c]},
                                        key=list(THROUGHPUT).index) if a != first]
            wanted = _pick(rng, [0, 1, 2], [0.1, 0.5, 0.4])
            for acc in rng.sample(others, min(wanted, len(others))):
                ratio = THROUGHPUT[first] / THROUGHPUT[acc]
                mult = 2 if ratio >= 2 and 2 * gpus <= MAX_GANG else 1
                alt = {"accelerator": acc, "gpus": gpus * mult,
                       "periods": max(1, math.ceil(length * ratio / mult - 1e-9))}
                if alt["periods"] > length:
                    alt["value"] = None  # filled in with the job's value below
                options.append(alt)
            # when: after the start-up's previous job sometimes (a chain), then a deadline
            release = d["release"] if windows == "narrow" else d["release"] // 4
            if previous and rng.random() < 0.25:
                pred = previous[-1]
                ready = pred["release"] + min(o["periods"] for o in pred["options"])
                if ready + length <= periods:
                    job["after"] = [pred["id"]]
                    release = max(release, ready)
            release = min(release, periods - length)
            if rng.random() < 0.05:
                deadline = periods
            else:
                deadline = min(periods, release + length + rng.randint(0, 2 * slack_half))
            if windows == "wide":
                deadline = periods
            options = [o for o in options if release + o["periods"] <= deadline]
            value = round(max(1.0, (gpus * length) ** 0.8 / 10.0
                              * rng.lognormvariate(0.0, 0.6)), 1)
            for o in options:
                if "value" in o:
                    o["value"] = round(value * rng.uniform(0.85, 1.0), 1)
            job.update(value=value, release=release, options=options)
            if deadline < periods or rng.random() < 0.5:
                job["deadline"] = deadline
            if release == 0:
                del job["release"]
            job_list.append(job)
            previous.append({"id": jid, "release": release, "options": options})
            runnable = [(o, c) for o in options for c in mine
                        if o["accelerator"] in pools_of[c]
                        and eligible(startup, o["accelerator"], c)]
            if startup["headquarters"] == "CN":
                offshore_need += min((o["gpus"] * o["periods"] for o, c in runnable
                                      if cluster_country[c] != "CN"), default=0)
            cheapest_cost[jid] = min(
                (o["gpus"] * o["periods"] * PERIOD_HOURS
                 * pools_of[c][o["accelerator"]]["price_per_gpu_hour"] for o, c in runnable),
                default=0.0)

    # -- capacity changes: deliveries (fewer GPUs first) and outages (half for a while) ---
    changed = False
    for c in cluster_list:
        for pool in c["pools"]:
            size = size_of_pool[(c["id"], pool["accelerator"])]
            pool["gpus"] = size
            roll = rng.random()
            if periods >= 4 and (roll < 0.3 or (not changed and c is cluster_list[-1]
                                                and pool is c["pools"][-1])):
                when = rng.randint(periods // 4, max(periods // 4, 3 * periods // 4))
                pool["gpus"] = _round_gpus(size * 0.75)
                pool["capacity"] = [{"from": when, "gpus": _round_gpus(size * 1.3)}]
                changed = True
            elif periods >= 4 and roll < 0.4:
                when = rng.randint(1, periods - 3)
                back = when + rng.randint(1, 2)
                pool["capacity"] = [{"from": when, "gpus": _round_gpus(size / 2)},
                                    {"from": back, "gpus": size}]
                changed = True

    # -- credits: 40-70 % of what the start-up's jobs cost at their cheapest --------------
    # (but at least the cheapest job's cost, so that every start-up can run something)
    costs: dict[str, list[float]] = defaultdict(list)
    for job in job_list:
        if cheapest_cost[job["id"]] > 0:
            costs[job["startup"]].append(cheapest_cost[job["id"]])
    for startup in startup_list:
        mine = costs.get(startup["id"], [])
        budget = max(rng.uniform(0.4, 0.7) * sum(mine), min(mine, default=0.0))
        startup["credits"] = float(1000 * math.ceil(budget / 1000))

    # -- caps and eligibility ----------------------------------------------------------------
    hours = PERIOD_HOURS
    cn_hq = [s["id"] for s in startup_list if s["headquarters"] == "CN"]
    base = {(c["id"], p["accelerator"]): p["gpus"] for c in cluster_list for p in c["pools"]}
    tpp = {a: float(BUILTIN[a]["tpp"]) for a in THROUGHPUT}

    def capacity(country: str | None, accs: set[str]) -> float:
        return float(sum(g for (c, a), g in base.items() if a in accs
                         and (country is None or cluster_country[c] == country)))

    cn_a_tpp = sum(g * tpp[a] for (c, a), g in base.items()
                   if a in RESTRICTED and cluster_country[c] == "CN")
    caps: list[dict[str, Any]] = [{
        "id": "cn-3a090a-tpp", "metric": "tpp", "per": "period",
        "limit": float(round(0.5 * cn_a_tpp, -3)),
        "export_classes": ["3A090.a"], "countries": ["CN"]}]
    if cn_hq and offshore_countries:
        caps.append({
            "id": "cn-offshore-gpu-hours", "metric": "gpu_hours", "per": "horizon",
            "limit": float(round(hours * max(256, 0.3 * offshore_need), -3)),
            "countries": offshore_countries, "startups": cn_hq})
        caps.append({
            "id": "cn-offshore-share", "metric": "gpu_hours", "per": "horizon",
            "countries": offshore_countries, "startups": cn_hq,
            "share_of": {"startups": cn_hq}, "fraction": 0.3})
    length = min(4, periods)
    caps.append({
        "id": "cn-h20-rolling", "metric": "gpus", "per": "rolling", "length": length,
        "limit": float(_round_gpus(0.5 * length * capacity("CN", {"H20"}))),
        "accelerators": ["H20"], "countries": ["CN"]})
    last = max(0, periods // 3 - 1)
    caps.append({
        "id": "ascend-ramp", "metric": "gpus", "per": "window", "periods": [0, last],
        "limit": float(_round_gpus(0.4 * (last + 1) * capacity(None, {"Ascend910B"}))),
        "accelerators": ["Ascend910B"]})
    eligibility = [{"id": "cn-hq-offshore-3a090a", "export_classes": ["3A090.a"],
                    "countries": offshore_countries, "headquarters": ["CN"]}
                   ] if offshore_countries else []

    data: dict[str, Any] = {
        "name": f"synthetic-c{clusters}-s{startups}-j{jobs}-p{periods}-seed{seed}",
        "horizon": {"periods": periods, "period_hours": hours, "start": START_DATE.isoformat()},
        "clusters": cluster_list,
        "startups": startup_list,
        "jobs": job_list,
        "caps": caps,
        "eligibility": eligibility,
    }
    _mark_mandatory(data, rng, target=min(40, max(1, round(jobs / 100))) if jobs else 0)
    return Instance.model_validate(data)


def _mark_mandatory(data: dict[str, Any], rng: random.Random, target: int) -> None:
    """Mark up to ``target`` jobs mandatory, only jobs that provably fit together.

    Candidates (no dependencies, at most 512 GPUs) are tried in random order; one is kept when
    some placement of it, together with those kept so far, passes the validator (capacity,
    credits, caps, eligibility) on an instance of the candidates alone.
    """
    if target <= 0:
        return
    pool = [j for j in data["jobs"] if not j.get("after")
            and min(o["gpus"] for o in j["options"]) <= 512]
    rng.shuffle(pool)
    pool = pool[: 4 * target]
    if not pool:
        return
    sub = Instance.model_validate({**data, "jobs": pool})
    chosen: list[Assignment] = []
    for job in sub.jobs:
        if len(chosen) >= target:
            break
        tries = []
        for k, option, cluster in sub.placements(job):
            pool_ = cluster.pool(option.accelerator)
            assert pool_ is not None
            for start in range(job.release, sub.deadline(job) - option.periods + 1):
                if all(pool_.gpus_at(t) >= option.gpus
                       for t in range(start, start + option.periods)):
                    tries.append((start, k, option, cluster))
        rng.shuffle(tries)
        for start, k, option, cluster in sorted(tries[:12], key=lambda x: x[0]):
            a = Assignment(job=job.id, cluster=cluster.id, accelerator=option.accelerator,
                           gpus=option.gpus, start=start, end=start + option.periods,
                           cost=sub.cost(cluster, option), value=job.option_value(option),
                           option=k)
            trial = [*chosen, a]
            done = {x.job for x in trial}
            plan = Plan(instance=sub.name, status=SolveStatus.FEASIBLE,
                        assignments=tuple(trial),
                        unscheduled=tuple(j.id for j in sub.jobs if j.id not in done))
            if not validate(sub, plan):
                chosen.append(a)
                break
    keep = {a.job for a in chosen}
    for job in data["jobs"]:
        if job["id"] in keep:
            job["mandatory"] = True


__all__ = ["DURATION_SCALE", "GANG_SCALE", "TIERS", "WINDOWS", "generate", "tier_instance",
           "trace_params"]

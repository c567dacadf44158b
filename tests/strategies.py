"""Seeded random SMALL instances that use every feature of the instance format.

``random_instance(seed, **sizes)`` is deterministic in ``seed`` and builds an instance with
several clusters, regions and countries; pools with capacity changes, prices and
``max_gpus_per_job``; built-in and custom accelerators (3A090.a, 3A090.b and unrestricted ones);
start-ups with credits (binding or null), weights, region restrictions, headquarters and
restricted export classes; jobs with several options, option-level values, release/deadline
windows, cluster/region restrictions, acyclic ``after`` dependencies and mandatory flags; caps of
every metric and window form (period, horizon, window, rolling), with scope filters and share
caps; eligibility rules; and sometimes a positive ``cost_weight``.

Instances stay feasible: a job is made mandatory only when a witness plan that runs every
mandatory job (and nothing else) passes the validator.

``instances(**sizes)`` is the hypothesis strategy wrapping the generator.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from gpualloc.models import Assignment, Instance, Plan

# (region, country) pairs: two Chinese regions so region and country filters differ.
REGIONS = (("cn-east", "CN"), ("us-west", "US"), ("cn-north", "CN"), ("sg-1", "SG"))
# Under the default regime (oct2023): H100, H800, A100, Ascend910B are 3A090.a; H20 and L20
# unrestricted; the custom X1 (TPP 3000, density 3.33) is computed as 3A090.b.
RESTRICTED_A = ("H100", "H800", "A100", "Ascend910B")
UNRESTRICTED = ("H20", "L20")
CUSTOM = ({"name": "X1", "vendor": "Acme", "tpp": 3000, "die_mm2": 900, "datacenter": True,
           "memory_gb": 64},)
PRICES = (0.5, 1.0, 1.25, 2.1, 3.0)
FEATURE_METRICS = ("gpus", "tpp", "gpu_hours")
FEATURE_PERS = ("period", "horizon", "window", "rolling")


def random_instance(seed: int, *, clusters: int | None = None, startups: int | None = None,
                    jobs: int | None = None, periods: int | None = None,
                    caps: int | None = None, max_options: int = 3,
                    max_gpus: int = 16) -> Instance:
    """A small random instance using every feature, deterministic in ``seed``.

    Sizes left as None are drawn at random (2-3 clusters, 2-3 start-ups, 5-8 jobs,
    3-6 periods, 1-3 caps).
    """
    rng = random.Random(seed)
    n_periods = periods if periods is not None else rng.randint(3, 6)
    n_clusters = clusters if clusters is not None else rng.randint(2, 3)
    n_startups = startups if startups is not None else rng.randint(2, 3)
    n_jobs = jobs if jobs is not None else rng.randint(5, 8)
    n_caps = caps if caps is not None else rng.randint(1, 3)
    hours = rng.choice((1.0, 10.0, 24.0, 168.0))
    gpu_sizes = [g for g in (1, 2, 4, 8, 16) if g <= max_gpus]

    accelerators: list[dict[str, Any]] = [dict(a) for a in CUSTOM]
    if rng.random() < 0.3:  # override a built-in's class explicitly (explicit wins)
        accelerators.append({"name": "H20", "export_class": "3A090.b"})

    # -- clusters: cluster 0 in CN with a 3A090.a pool, cluster 1 in US with an unrestricted
    # pool, so every instance has several countries and both kinds of chips.
    cluster_list = []
    for c in range(n_clusters):
        region, country = REGIONS[c] if c < 2 else rng.choice(REGIONS)
        accs = {rng.choice(RESTRICTED_A) if c == 0 else rng.choice(UNRESTRICTED)}
        palette = (*RESTRICTED_A, *UNRESTRICTED, "X1")
        accs.update(rng.sample(palette, rng.randint(0, 2)))
        pools = []
        for acc in sorted(accs):
            pool: dict[str, Any] = {"accelerator": acc, "gpus": rng.choice((4, 8, 16, 24)),
                                    "price_per_gpu_hour": rng.choice(PRICES)}
            if rng.random() < 0.4 and n_periods > 1:
                changes = rng.sample(range(1, n_periods), min(n_periods - 1, rng.randint(1, 2)))
                pool["capacity"] = [{"from": t, "gpus": rng.choice((0, 4, 8, 16, 24))}
                                    for t in changes]
            if rng.random() < 0.3:
                pool["max_gpus_per_job"] = rng.choice((4, 8))
            pools.append(pool)
        cluster_list.append({"id": f"c{c}", "region": region, "country": country,
                             "pools": pools})
    regions_used = sorted({c["region"] for c in cluster_list})
    countries_used = sorted({c["country"] for c in cluster_list})
    pool_accs = sorted({p["accelerator"] for c in cluster_list for p in c["pools"]})

    # -- start-ups
    startup_list = []
    for s in range(n_startups):
        startup: dict[str, Any] = {"id": f"s{s}", "name": f"Start-up {s}",
                                   "weight": rng.choice((1.0, 1.0, 0.5, 1.5, 2.0)),
                                   "headquarters": rng.choice(("CN", "US", "SG"))}
        if rng.random() < 0.25:
            startup["regions"] = rng.sample(regions_used, rng.randint(1, len(regions_used)))
        if rng.random() < 0.2:
            startup["restricted"] = ["3A090.a"]
        startup_list.append(startup)

    # -- jobs
    job_list: list[dict[str, Any]] = []
    for j in range(n_jobs):
        options = []
        for _ in range(rng.randint(1, max_options)):
            acc = rng.choice(pool_accs) if rng.random() < 0.9 else rng.choice(
                ("H100", "H20", "X1"))
            # mostly a gang that fits some pool of the accelerator; sometimes any size
            largest = max((p["gpus"] for c in cluster_list for p in c["pools"]
                           if p["accelerator"] == acc), default=0)
            sizes = [g for g in gpu_sizes if g <= largest] if rng.random() < 0.85 else []
            option: dict[str, Any] = {"accelerator": acc,
                                      "gpus": rng.choice(sizes or gpu_sizes),
                                      "periods": rng.randint(1, min(3, n_periods))}
            if rng.random() < 0.3:
                option["value"] = rng.randint(1, 20)
            options.append(option)
        shortest = min(o["periods"] for o in options)
        job: dict[str, Any] = {"id": f"j{j}", "startup": rng.choice(startup_list)["id"],
                               "value": rng.randint(1, 20), "options": options}
        if rng.random() < 0.4:
            job["release"] = rng.randint(0, n_periods - shortest)
        if rng.random() < 0.4:
            job["deadline"] = rng.randint(job.get("release", 0) + shortest, n_periods)
        if j and rng.random() < 0.3:
            job["after"] = sorted(rng.sample([f"j{k}" for k in range(j)],
                                             rng.randint(1, min(2, j))))
        if rng.random() < 0.15:
            job["clusters"] = rng.sample([c["id"] for c in cluster_list],
                                         rng.randint(1, n_clusters))
        elif rng.random() < 0.1:
            job["regions"] = rng.sample(regions_used, rng.randint(1, len(regions_used)))
        job_list.append(job)

    # -- credits: null, or a share of what the start-up's jobs would cost at the mean price
    for startup in startup_list:
        if rng.random() < 0.3:
            continue  # null credits: unlimited (sometimes given explicitly)
        if rng.random() < 0.2:
            startup["credits"] = None
            continue
        demand = sum(max(o["gpus"] * o["periods"] for o in job["options"])
                     for job in job_list if job["startup"] == startup["id"])
        startup["credits"] = round(rng.uniform(0.2, 0.8) * demand * hours * 1.5, 2)

    # -- caps
    cap_list = []
    for k in range(n_caps):
        metric = FEATURE_METRICS[(seed + k) % 3] if rng.random() < 0.5 else rng.choice(
            FEATURE_METRICS)
        per = FEATURE_PERS[(seed + k) % 4] if rng.random() < 0.5 else rng.choice(FEATURE_PERS)
        cap: dict[str, Any] = {"id": f"cap{k}", "metric": metric, "per": per}
        width = 1
        if per == "horizon":
            width = n_periods
        elif per == "window":
            first = rng.randint(0, n_periods - 1)
            last = rng.randint(first, n_periods - 1)
            cap["periods"] = [first, last]
            width = last - first + 1
        elif per == "rolling":
            cap["length"] = rng.randint(1, n_periods)
            width = cap["length"]
        unit = {"gpus": 1.0, "tpp": 16000.0, "gpu_hours": hours}[metric]
        if rng.random() < 0.3:
            # share cap: a narrow scope at most a fraction of a broader one (or of everything)
            cap.update(_random_scope(rng, cluster_list, startup_list, countries_used,
                                     regions_used, pool_accs, keep=1.0, most=1))
            cap["share_of"] = rng.choice(({}, {"countries": countries_used}))
            cap["fraction"] = rng.choice((0.5, 0.75))
            if rng.random() < 0.5:
                cap["limit"] = float(rng.choice((8, 16, 24)) * width * unit)
        else:
            cap.update(_random_scope(rng, cluster_list, startup_list, countries_used,
                                     regions_used, pool_accs))
            cap["limit"] = float(rng.choice((4, 8, 12, 16)) * width * unit)
        cap_list.append(cap)

    # -- eligibility rules
    eligibility = []
    if rng.random() < 0.5:
        rule: dict[str, Any] = {"id": "no-a-for-cn", "export_classes": ["3A090.a"]}
        if rng.random() < 0.7:
            rule["countries"] = [rng.choice(countries_used)]
        rule["headquarters"] = [rng.choice(("CN", "US", "SG"))]
        eligibility.append(rule)

    data: dict[str, Any] = {
        "name": f"random-{seed}",
        "horizon": {"periods": n_periods, "period_hours": hours},
        "accelerators": accelerators,
        "clusters": cluster_list,
        "startups": startup_list,
        "jobs": job_list,
        "caps": cap_list,
        "eligibility": eligibility,
    }
    if rng.random() < 0.3:
        data["objective"] = {"cost_weight": rng.choice((0.001, 0.002, 0.005, 0.01))}

    instance = Instance.model_validate(data)
    candidates = [j for j in job_list if not j.get("after")]
    chosen = [j["id"] for j in rng.sample(candidates, min(len(candidates), 2))
              if rng.random() < 0.5]
    mandatory = _feasible_mandatory(instance, chosen)
    if mandatory:
        for job in job_list:
            if job["id"] in mandatory:
                job["mandatory"] = True
        instance = Instance.model_validate(data)
    return instance


def _random_scope(rng: random.Random, clusters: list[dict[str, Any]],
                  startups: list[dict[str, Any]], countries: list[str], regions: list[str],
                  accs: list[str], keep: float = 0.6, most: int = 2) -> dict[str, Any]:
    """One to ``most`` random scope filters (or none, with probability 1 - keep)."""
    if rng.random() > keep:
        return {}
    choices = {
        "accelerators": lambda: rng.sample(accs, rng.randint(1, len(accs))),
        "export_classes": lambda: rng.sample(["3A090.a", "3A090.b", "unrestricted"],
                                             rng.randint(1, 2)),
        "clusters": lambda: rng.sample([c["id"] for c in clusters], 1),
        "regions": lambda: rng.sample(regions, 1),
        "countries": lambda: rng.sample(countries, 1),
        "startups": lambda: rng.sample([s["id"] for s in startups], 1),
    }
    fields = rng.sample(sorted(choices), rng.randint(1, most))
    return {f: choices[f]() for f in fields}


def _feasible_mandatory(instance: Instance, chosen: list[str]) -> set[str]:
    """Those of ``chosen`` that a witness plan (running only them) can run together."""
    from gpualloc.models.validator import validate

    witness: list[Assignment] = []
    out: set[str] = set()
    for job_id in chosen:
        job = instance.job_by_id[job_id]
        for k, option, cluster in instance.placements(job):
            last = instance.deadline(job) - option.periods
            found = None
            for start in range(job.release, last + 1):
                a = Assignment(job=job.id, cluster=cluster.id, accelerator=option.accelerator,
                               gpus=option.gpus, start=start, end=start + option.periods,
                               cost=instance.cost(cluster, option),
                               value=job.option_value(option), option=k)
                trial = [*witness, a]
                plan = Plan(instance=instance.name, status="feasible",
                            assignments=tuple(trial),
                            unscheduled=tuple(j.id for j in instance.jobs
                                              if j.id not in {t.job for t in trial}))
                if not validate(instance, plan):
                    found = a
                    break
            if found is not None:
                witness.append(found)
                out.add(job_id)
                break
    return out


def instances(**sizes: Any) -> st.SearchStrategy[Instance]:
    """Hypothesis strategy: ``random_instance`` over random seeds (sizes passed through)."""
    return st.integers(min_value=0, max_value=2**31 - 1).map(
        lambda seed: random_instance(seed, **sizes))


def feature_counts(instance: Instance) -> dict[str, int]:
    """How often each feature occurs in an instance (used to check the generator's coverage)."""
    pools = [p for c in instance.clusters for p in c.pools]
    count = {
        "countries": len({c.country for c in instance.clusters}),
        "regions": len({c.region for c in instance.clusters}),
        "capacity_changes": sum(bool(p.capacity) for p in pools),
        "max_gpus_per_job": sum(p.max_gpus_per_job is not None for p in pools),
        "class_3A090.a": sum(instance.export_class(p.accelerator) == "3A090.a" for p in pools),
        "class_3A090.b": sum(instance.export_class(p.accelerator) == "3A090.b" for p in pools),
        "credits_set": sum(s.credits is not None for s in instance.startups),
        "credits_null": sum(s.credits is None for s in instance.startups),
        "weights": sum(s.weight != 1.0 for s in instance.startups),
        "startup_regions": sum(s.regions is not None for s in instance.startups),
        "restricted": sum(bool(s.restricted) for s in instance.startups),
        "multi_option": sum(len(j.options) > 1 for j in instance.jobs),
        "option_value": sum(o.value is not None for j in instance.jobs for o in j.options),
        "release": sum(j.release > 0 for j in instance.jobs),
        "deadline": sum(j.deadline is not None for j in instance.jobs),
        "mandatory": sum(j.mandatory for j in instance.jobs),
        "after": sum(bool(j.after) for j in instance.jobs),
        "job_clusters": sum(j.clusters is not None for j in instance.jobs),
        "job_regions": sum(j.regions is not None for j in instance.jobs),
        "share_caps": sum(c.share_of is not None for c in instance.caps),
        "eligibility": len(instance.eligibility),
        "cost_weight": int(instance.objective.cost_weight > 0),
    }
    for metric in FEATURE_METRICS:
        count[f"metric_{metric}"] = sum(c.metric == metric for c in instance.caps)
    for per in FEATURE_PERS:
        count[f"per_{per}"] = sum(c.per == per for c in instance.caps)
    for field in ("accelerators", "export_classes", "clusters", "regions", "countries",
                  "startups"):
        count[f"scope_{field}"] = sum(getattr(c, field) is not None for c in instance.caps)
    return count

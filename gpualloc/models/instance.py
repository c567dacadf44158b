"""The problem: frozen pydantic models of an instance (see DESIGN.md) and its semantics.

Models only describe and validate; every rule a plan must satisfy is stated through the
helpers here (capacity per period, allowed clusters, eligibility, cap scope and windows), so
that the formulation and the independent validator read the same meaning from one place.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .catalog import BUILTIN, DEFAULT_REGIME, REGIMES, classify

# Bounds keep every quantity finite and every product exact in 64-bit integer arithmetic.
MAX_GPUS = 10_000_000
MAX_PERIODS = 100_000
MAX_MONEY = 1e15

Id = Annotated[str, Field(min_length=1, max_length=200)]
PosInt = Annotated[int, Field(strict=True, gt=0)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
Gpus = Annotated[int, Field(strict=True, ge=0, le=MAX_GPUS)]
PosGpus = Annotated[int, Field(strict=True, gt=0, le=MAX_GPUS)]
Period = Annotated[int, Field(strict=True, ge=0, le=MAX_PERIODS)]
Periods = Annotated[int, Field(strict=True, gt=0, le=MAX_PERIODS)]
NonNeg = Annotated[float, Field(strict=True, ge=0, le=MAX_MONEY, allow_inf_nan=False)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Flag = Annotated[bool, Field(strict=True)]

Metric = Literal["gpus", "tpp", "gpu_hours"]
ExportClassName = Literal["3A090.a", "3A090.b", "unrestricted"]
Regime = Literal["oct2022", "oct2023", "jan2026"]

SCOPE_FIELDS = ("accelerators", "export_classes", "clusters", "regions", "countries", "startups")


class Frozen(BaseModel):
    """Base of every schema model: immutable, no unknown keys, no inf/NaN."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


class Horizon(Frozen):
    periods: Periods
    period_hours: Annotated[float, Field(strict=True, gt=0, le=24 * 366)] = 168.0
    start: dt.date | None = None

    @field_validator("start", mode="before")
    @classmethod
    def _date_not_number(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("start must be a date like 2025-01-06, not a number")
        return value


class Accelerator(Frozen):
    """An accelerator type; instance entries extend or override the built-in catalog."""

    name: Id
    vendor: str | None = None
    origin: str | None = None
    datacenter: Flag | None = None
    tpp: NonNeg | None = None
    memory_gb: NonNeg | None = None
    memory_tbs: NonNeg | None = None
    bf16_tflops: NonNeg | None = None
    fp8_tflops: NonNeg | None = None
    link_gbs: NonNeg | None = None
    die_mm2: NonNeg | None = None
    export_class: ExportClassName | None = None

    @property
    def performance_density(self) -> float | None:
        if self.tpp is None or not self.die_mm2:
            return None
        return self.tpp / self.die_mm2


class CapacityChange(Frozen):
    """From period ``from`` on, the pool has ``gpus`` GPUs (until the next change)."""

    from_: Period = Field(alias="from")
    gpus: Gpus


class Pool(Frozen):
    accelerator: Id
    gpus: Gpus
    capacity: tuple[CapacityChange, ...] = ()
    price_per_gpu_hour: NonNeg
    max_gpus_per_job: PosGpus | None = None

    @cached_property
    def _changes(self) -> list[CapacityChange]:
        return sorted(self.capacity, key=lambda c: c.from_)

    def gpus_at(self, period: int) -> int:
        """GPUs available in ``period`` (the last change at or before it wins)."""
        gpus = self.gpus
        for change in self._changes:
            if change.from_ > period:
                break
            gpus = change.gpus
        return gpus


class Cluster(Frozen):
    id: Id
    region: Id
    country: Id
    pools: tuple[Pool, ...] = ()

    def pool(self, accelerator: str) -> Pool | None:
        return next((p for p in self.pools if p.accelerator == accelerator), None)


class Tranche(Frozen):
    """Credits spendable from period ``from`` on (DESIGN.md "Credit tranches")."""

    from_: Period = Field(alias="from")
    credits: NonNeg


class Startup(Frozen):
    """A start-up; with ``tranches`` its credits are released over the horizon (``credits``
    then defaults to their sum), with ``min_share`` its share has a hard floor (rule 8)."""

    id: Id
    name: str | None = None
    credits: NonNeg | None = None
    weight: NonNeg = 1.0
    regions: tuple[Id, ...] | None = None
    headquarters: Id | None = None
    restricted: tuple[ExportClassName, ...] = ()
    tranches: tuple[Tranche, ...] = ()
    carry_over: Flag = True
    min_share: Fraction | None = None

    @model_validator(mode="before")
    @classmethod
    def _credits_from_tranches(cls, data: Any) -> Any:
        """``credits`` absent (or null) with tranches given: the sum of the tranches."""
        tranches = data.get("tranches") if isinstance(data, dict) else None
        if isinstance(tranches, list | tuple) and tranches and data.get("credits") is None:
            amounts = [t.credits if isinstance(t, Tranche) else
                       t.get("credits") if isinstance(t, dict) else None for t in tranches]
            if all(isinstance(a, int | float) and not isinstance(a, bool)
                               and math.isfinite(a) for a in amounts):
                data = {**data, "credits": float(math.fsum(amounts))}
        return data

    def released(self, period: int) -> float | None:
        """Credits released by ``period`` (the tranches with ``from <= period``); None when
        the start-up has no tranches (then ``credits``, possibly unlimited, holds throughout)."""
        if not self.tranches:
            return self.credits
        return math.fsum(t.credits for t in self.tranches if t.from_ <= period)


class Option(Frozen):
    accelerator: Id
    gpus: PosGpus
    periods: Periods
    value: NonNeg | None = None


class Job(Frozen):
    id: Id
    startup: Id
    value: NonNeg = 0.0
    release: Period = 0
    deadline: Period | None = None
    mandatory: Flag = False
    after: tuple[Id, ...] = ()
    options: tuple[Option, ...]
    clusters: tuple[Id, ...] | None = None
    regions: tuple[Id, ...] | None = None

    def option_value(self, option: Option) -> float:
        return self.value if option.value is None else option.value


class Scope(Frozen):
    """Filters that an assignment must all match; an absent filter matches everything."""

    accelerators: tuple[Id, ...] | None = None
    export_classes: tuple[ExportClassName, ...] | None = None
    clusters: tuple[Id, ...] | None = None
    regions: tuple[Id, ...] | None = None
    countries: tuple[Id, ...] | None = None
    startups: tuple[Id, ...] | None = None

    def matches(self, instance: Instance, job: Job, cluster: Cluster, accelerator: str) -> bool:
        checks = (
            (self.accelerators, accelerator),
            (self.export_classes, instance.export_class(accelerator)),
            (self.clusters, cluster.id),
            (self.regions, cluster.region),
            (self.countries, cluster.country),
            (self.startups, job.startup),
        )
        return all(allowed is None or value in allowed for allowed, value in checks)


class Cap(Scope):
    """A limit on GPUs, TPP or GPU-hours in scope, per period, horizon or window.

    ``per``: ``period`` (each period), ``horizon`` (summed over all periods), ``window``
    (summed over periods ``periods[0]..periods[1]`` inclusive), ``rolling`` (summed over every
    ``length`` consecutive periods). With ``share_of`` the use in each window is also at most
    ``fraction`` times the use of the ``share_of`` scope in that window.
    """

    id: Id
    metric: Metric
    per: Literal["period", "horizon", "window", "rolling"] = "period"
    limit: Annotated[float, Field(strict=True, ge=0, le=1e18, allow_inf_nan=False)] | None = None
    periods: tuple[Period, Period] | None = None
    length: Periods | None = None
    share_of: Scope | None = None
    fraction: Fraction | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Cap:
        if self.limit is None and self.share_of is None:
            raise ValueError("a cap needs a limit, a share_of scope, or both")
        if (self.share_of is None) != (self.fraction is None):
            raise ValueError("share_of and fraction go together")
        if self.per == "window" and self.periods is None:
            raise ValueError("per: window needs periods: [first, last]")
        if self.per == "window" and self.periods and self.periods[0] > self.periods[1]:
            raise ValueError("periods: first must not be after last")
        if self.per == "rolling" and self.length is None:
            raise ValueError("per: rolling needs length: k")
        return self

    def windows(self, horizon: int) -> list[range]:
        """The period sets whose summed use is limited."""
        if self.per == "period":
            return [range(t, t + 1) for t in range(horizon)]
        if self.per == "horizon":
            return [range(horizon)]
        if self.per == "window":
            assert self.periods is not None
            first, last = self.periods
            return [range(first, min(last, horizon - 1) + 1)]
        assert self.length is not None
        k = min(self.length, horizon)
        return [range(t, t + k) for t in range(horizon - k + 1)]

    def per_period_use(self, gpus: int, tpp: float, period_hours: float) -> float:
        """What an assignment of ``gpus`` contributes in one period it runs in."""
        if self.metric == "gpus":
            return float(gpus)
        if self.metric == "tpp":
            return gpus * tpp
        return gpus * period_hours


class EligibilityRule(Frozen):
    """Start-ups headquartered in ``headquarters`` may not use ``export_classes`` in
    ``countries`` (an absent filter matches everything)."""

    id: Id | None = None
    export_classes: tuple[ExportClassName, ...] | None = None
    countries: tuple[Id, ...] | None = None
    headquarters: tuple[Id, ...] | None = None


class Objective(Frozen):
    """``kind: value`` maximises weighted value minus the cost term; ``maxmin`` first maximises
    the smallest share m*, then value with every share >= m* - ``fairness_tolerance``."""

    kind: Literal["value", "maxmin"] = "value"
    cost_weight: NonNeg = 0.0
    fairness_tolerance: Fraction = 0.0


class Instance(Frozen):
    """A validated, immutable planning instance. Build with ``load_instance`` or directly."""

    name: Id
    horizon: Horizon
    regime: Regime = DEFAULT_REGIME
    accelerators: tuple[Accelerator, ...] = ()
    clusters: tuple[Cluster, ...]
    startups: tuple[Startup, ...]
    jobs: tuple[Job, ...] = ()
    caps: tuple[Cap, ...] = ()
    eligibility: tuple[EligibilityRule, ...] = ()
    objective: Objective = Objective()

    @model_validator(mode="after")
    def _semantics(self) -> Instance:
        from .checks import semantic_issues

        issues = [
            i for i in semantic_issues(self.model_dump(by_alias=True)) if i.severity == "error"
        ]
        if issues:
            from .errors import InstanceError

            raise InstanceError(issues)
        return self

    # -- look-ups ---------------------------------------------------------------------------
    @cached_property
    def catalog(self) -> dict[str, Accelerator]:
        """Every accelerator known to the instance, with its export class under the regime."""
        specs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in BUILTIN.items()}
        for acc in self.accelerators:
            given = acc.model_dump(exclude_none=True)
            base = specs.get(acc.name, {})
            if acc.export_class is None and "export_class" in base:
                del base["export_class"]
            specs[acc.name] = {**base, **given}
        out = {}
        for name, spec in specs.items():
            spec["export_class"] = classify(spec, self.regime)
            out[name] = Accelerator.model_validate(spec)
        return out

    @cached_property
    def cluster_by_id(self) -> dict[str, Cluster]:
        return {c.id: c for c in self.clusters}

    @cached_property
    def startup_by_id(self) -> dict[str, Startup]:
        return {s.id: s for s in self.startups}

    @cached_property
    def job_by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}

    @cached_property
    def asked_value(self) -> dict[str, float]:
        """Per start-up: the sum over its jobs of each job's largest option value (the
        denominator of its share, DESIGN.md "Fairness"; 0: the start-up has no share)."""
        out = {s.id: 0.0 for s in self.startups}
        for job in self.jobs:
            if job.startup in out and job.options:
                out[job.startup] += max(job.option_value(o) for o in job.options)
        return out

    def export_class(self, accelerator: str) -> str:
        acc = self.catalog.get(accelerator)
        return acc.export_class if acc and acc.export_class else "unrestricted"

    def tpp(self, accelerator: str) -> float:
        acc = self.catalog.get(accelerator)
        return float(acc.tpp) if acc and acc.tpp is not None else 0.0

    def deadline(self, job: Job) -> int:
        return self.horizon.periods if job.deadline is None else job.deadline

    def allowed_clusters(self, job: Job) -> list[Cluster]:
        """Clusters that the job's and its start-up's restrictions allow."""
        startup = self.startup_by_id.get(job.startup)
        out = []
        for c in self.clusters:
            if job.clusters is not None and c.id not in job.clusters:
                continue
            if job.regions is not None and c.region not in job.regions:
                continue
            if startup and startup.regions is not None and c.region not in startup.regions:
                continue
            out.append(c)
        return out

    def ineligibility(self, job: Job, accelerator: str, cluster: Cluster) -> str | None:
        """Why export rules bar running ``accelerator`` in ``cluster`` for the job, if they do."""
        startup = self.startup_by_id.get(job.startup)
        cls = self.export_class(accelerator)
        if startup and cls in startup.restricted:
            return f"start-up {startup.id} may not use {cls} ({accelerator})"
        for k, rule in enumerate(self.eligibility):
            if rule.export_classes is not None and cls not in rule.export_classes:
                continue
            if rule.countries is not None and cluster.country not in rule.countries:
                continue
            hq = startup.headquarters if startup else None
            if rule.headquarters is not None and hq not in rule.headquarters:
                continue
            name = rule.id or f"eligibility[{k}]"
            return f"{name}: {cls} ({accelerator}) in {cluster.country} barred for HQ {hq}"
        return None

    def cost(self, cluster: Cluster, option: Option) -> float:
        """Credits charged for running ``option`` on ``cluster``."""
        pool = cluster.pool(option.accelerator)
        price = pool.price_per_gpu_hour if pool else 0.0
        return option.gpus * option.periods * self.horizon.period_hours * price

    def placements(self, job: Job) -> Iterator[tuple[int, Option, Cluster]]:
        """Every (option index, option, cluster) that rules 2 and 3 and eligibility allow."""
        deadline = self.deadline(job)
        for k, option in enumerate(job.options):
            if job.release + option.periods > deadline:
                continue
            for cluster in self.allowed_clusters(job):
                pool = cluster.pool(option.accelerator)
                if pool is None:
                    continue
                if pool.max_gpus_per_job is not None and option.gpus > pool.max_gpus_per_job:
                    continue
                if self.ineligibility(job, option.accelerator, cluster) is not None:
                    continue
                yield k, option, cluster


__all__ = [
    "REGIMES",
    "Accelerator",
    "Cap",
    "CapacityChange",
    "Cluster",
    "EligibilityRule",
    "Horizon",
    "Instance",
    "Job",
    "Objective",
    "Option",
    "Pool",
    "Scope",
    "Startup",
    "Tranche",
]

"""Ways of attacking a model: exact (one backend), portfolio, LNS, partition (huge models, part
by part, then the LNS on the whole), LP by column generation and the Lagrangian bound.

A strategy is not a backend: ``solve`` chooses one (``choose_strategy``) and runs it. Each takes
``(model, params, stop, start, progress, engine=...)`` and returns a ``BackendResult`` like a
backend does; ``label`` is the plan's ``backend`` field (None: the engine's name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..backends.base import Backend, BackendResult, ProgressCallback, SolveParams
from ..model.formulation import LinearModel
from ..stop import Stop

Run = Callable[..., BackendResult]
STRATEGIES = ("auto", "exact", "lns", "partition", "portfolio")


@dataclass(frozen=True)
class Strategy:
    """A named way of solving: ``run(model, params, stop, start, progress, engine=...)``."""

    name: str
    label: str | None
    run: Run


def exact(model: LinearModel, params: SolveParams, stop: Stop, start: list[float] | None,
          progress: ProgressCallback | None, *, engine: Backend) -> BackendResult:
    """The whole model on ``engine``."""
    return engine.solve(model, params, start, progress, stop=stop)


def _lns(model: LinearModel, params: SolveParams, stop: Stop, start: list[float] | None,
         progress: ProgressCallback | None, *, engine: Backend) -> BackendResult:
    from .lns import lns_solve

    return lns_solve(model, params, stop, start, progress)


def _partition(model: LinearModel, params: SolveParams, stop: Stop, start: list[float] | None,
               progress: ProgressCallback | None, *, engine: Backend) -> BackendResult:
    from .partition import partition_solve

    return partition_solve(model, params, stop, start, progress)


def _portfolio(model: LinearModel, params: SolveParams, stop: Stop, start: list[float] | None,
               progress: ProgressCallback | None, *, engine: Backend) -> BackendResult:
    from .portfolio import portfolio_solve

    return portfolio_solve(model, params, stop, start, progress)


_STRATEGIES = {"exact": Strategy("exact", None, exact),
               "lns": Strategy("lns", "lns", _lns),
               "partition": Strategy("partition", "partition", _partition),
               "portfolio": Strategy("portfolio", "portfolio", _portfolio)}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name`` (not ``auto``: see ``choose_strategy``)."""
    if name not in _STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(_STRATEGIES)}")
    return _STRATEGIES[name]


def choose_strategy(backend: str, model: LinearModel, strategy: str = "auto",
                    workers: int = 1) -> str:
    """The strategy ``solve`` runs: ``strategy`` itself unless it is ``"auto"``, which for
    ``cpsat`` picks the partition from ``partition.PARTITION_MIN_JOBS`` jobs above
    ``lns.LNS_THRESHOLD`` variables, LNS above that many variables, the CP-SAT + HiGHS portfolio
    from ``portfolio.PORTFOLIO_MIN_VARS`` variables when there are two workers or more (one
    worker stays deterministic), and the exact backend otherwise."""
    from .lns import LNS_THRESHOLD
    from .portfolio import PORTFOLIO_MIN_VARS, portfolio_available

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if strategy != "auto":
        return strategy
    if backend != "cpsat":
        return "exact"
    if model.num_vars > LNS_THRESHOLD:
        return "partition" if _huge(model) else "lns"
    if workers >= 2 and model.num_vars >= PORTFOLIO_MIN_VARS and portfolio_available():
        return "portfolio"
    return "exact"


EXACT_MAX_VARS = 5_000  # auto: below this CP-SAT on the whole model (README)
NARROW_LNS_FROM = 20_000  # auto, narrow windows: LNS from this many variables, HiGHS alone below
# on narrow windows (at most NARROW_PER_JOB placements per job on average) HiGHS alone beats
# CP-SAT alone, and the LNS with HiGHS beside it
from .beside import NARROW_PER_JOB  # noqa: E402


def choose_engine(model: LinearModel, strategy: str = "auto",
                  workers: int = 1) -> tuple[str, str, int]:
    """``(backend, strategy, workers)`` for ``backend="auto"``, as measured on the 2-core
    machine (README, "Plan quality and strategies"): CP-SAT on the whole model below
    ``EXACT_MAX_VARS`` variables (it proves those optima fastest); above, on wide windows
    (more than ``NARROW_PER_JOB`` placements per job on average) up to ``lns.LNS_THRESHOLD``,
    CP-SAT on the whole model with one worker (medium shape: 0.1% in 60 s; two CP-SAT
    workers 0.9%, LNS 1.5%); on narrow windows HiGHS alone on every worker, but the LNS from
    ``NARROW_LNS_FROM`` variables with two workers or more; LNS above ``lns.LNS_THRESHOLD``
    always, by partition from ``partition.PARTITION_MIN_JOBS`` jobs. An explicit ``lns``,
    ``partition`` or ``portfolio`` runs on CP-SAT with
    every worker; ``exact`` on the engine chosen as for one worker."""
    from .lns import LNS_THRESHOLD

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    n = model.num_vars
    if strategy in ("lns", "partition", "portfolio"):
        return "cpsat", strategy, workers
    if n < EXACT_MAX_VARS:
        return "cpsat", "exact", workers
    if strategy == "auto" and n > LNS_THRESHOLD:
        return "cpsat", "partition" if _huge(model) else "lns", workers
    narrow = n <= NARROW_PER_JOB * max(1, len(model.by_job))
    if not narrow:
        return "cpsat", "exact", 1
    if strategy == "auto" and n >= NARROW_LNS_FROM and workers >= 2:
        # LNS with HiGHS on the LP's support, then on the whole model (measured, 60 s, 2
        # workers: 1,300 jobs, 25,951 binaries, 10,052.5 against HiGHS alone's 9,807.4;
        # 1,800 jobs, 38,772 binaries, 11,564.25 against 10,086.9; README). One worker:
        # HiGHS alone, deterministic.
        return "cpsat", "lns", workers
    # narrow and smaller: HiGHS alone, every worker (60 s, 2 workers: medium narrow 2,372.25
    # against the LNS's 2,366.35; 700 jobs, 13,335 binaries, 4,858.95 against 4,819.05)
    return ("highs" if _highs_available() else "cpsat"), "exact", workers


def _huge(model: LinearModel) -> bool:
    from .partition import PARTITION_MIN_JOBS

    return len(model.by_job) >= PARTITION_MIN_JOBS


def _highs_available() -> bool:
    from ..backends.mip import HighsBackend

    return HighsBackend().available()


__all__ = ["STRATEGIES", "Strategy", "choose_engine", "choose_strategy", "exact",
           "get_strategy"]

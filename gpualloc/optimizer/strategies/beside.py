"""Searches that run in a thread beside the LNS and exchange incumbents with it.

- ``IntervalHelper``: the interval model (``backends.interval``) on the whole model, hinted
  with the LNS start; each plan it finds that beats the incumbent becomes the incumbent.
- ``MipHelper``: HiGHS branch and bound on the whole model, started once the LP is solved,
  from the LNS incumbent; every improvement the LNS makes is handed to it as a user solution
  (its tree prunes with it and its own heuristics start from it), its proven bound tightens
  the LNS's (the LP's is the root's) and a better plan of its own is taken over.

- ``SupportMip``: HiGHS branch and bound on the LP's support (every placement with a positive
  LP value, and the incumbent's), every other placement fixed to 0: a restricted master of a
  few thousand binaries whose optimum lies close to the LP's (large-wide, 650k placements:
  LP support 4,141 placements, HiGHS 26,010.85 in 22 s against the LP's 26,696.11, where
  CP-SAT on the same sub-model found 25,157 in 30 s and HiGHS on the LP's 26k generated
  columns 23,372 in 60 s). Each improving plan it finds is offered to the LNS at once. Its
  bound holds for the restricted model only and is not used.

They are stopped with the LNS and waited for (at most ``JOIN_SECONDS``; after SIGINT or
SIGTERM only ``JOIN_INTERRUPTED``, and HiGHS then ends in its thread just after the solve
returns); every plan taken over has passed ``model.check``.
"""

from __future__ import annotations

import threading
from typing import Any

from ..backends.base import BackendResult, SolveParams
from ..model.formulation import LinearModel
from ..stop import Stop
from .neighbourhood import Search

INTERVAL_MIN_WORKERS = 3  # the interval model joins from this many workers (README)
NARROW_PER_JOB = 40  # at most this many placements per job on average: narrow windows
# seconds to wait for a stopped search to return (after SIGINT/SIGTERM: JOIN_INTERRUPTED, so
# that the LNS returns its plan within the CLI's grace; the thread ends soon after)
JOIN_SECONDS, JOIN_INTERRUPTED = 5.0, 0.2


class _Beside:
    """A search in a thread with a mailbox for its best plan."""

    def __init__(self, model: LinearModel, stop: Stop) -> None:
        self.model = model
        self.stop = stop.child()  # ends it alone (``finish``) or with the LNS
        self.lock = threading.Lock()
        self.plan: tuple[float, list[float]] | None = None
        self.found = 0
        self.result: BackendResult | None = None
        self.thread: threading.Thread | None = None

    def _found(self, values: list[float], objective: float) -> None:
        with self.lock:
            self.found += 1
            if self.plan is None or objective > self.plan[0]:
                self.plan = (objective, values)

    def _start(self, run: Any, name: str) -> None:
        def target() -> None:
            try:
                self.result = run()
            except Exception as e:  # a helper failing must not end the LNS
                self.result = BackendResult("unknown", stats={"error": f"{type(e).__name__}"})

        # not a daemon: an interrupted LNS returns without waiting for it (JOIN_INTERRUPTED),
        # and the interpreter's exit must wait for HiGHS to stop (it aborts otherwise)
        self.thread = threading.Thread(target=target, name=name, daemon=False)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def take(self, best: float) -> list[float] | None:
        """Its best plan when it beats ``best`` and passes ``model.check`` (each plan once)."""
        with self.lock:
            plan, self.plan = self.plan, None
        if self.result is not None and self.result.values is not None and plan is None:
            values = self.result.values
            plan = (self.model.objective_value(values), values)
            self.result.values = None
        if plan is None or plan[0] <= best + 1e-7 * max(1.0, abs(best)):
            return None
        return plan[1] if not self.model.check(plan[1]) else None

    def finish(self, wait: float = JOIN_SECONDS) -> dict[str, Any]:
        """Stop it and wait for it (at most ``wait`` seconds); its stats."""
        self.stop.request()
        if self.thread is not None:
            self.thread.join(timeout=wait)
        return self._stats(self.result)

    def _stats(self, r: BackendResult | None) -> dict[str, Any]:
        raise NotImplementedError


class IntervalHelper(_Beside):
    """The interval model searching in a thread."""

    def __init__(self, model: LinearModel, start: list[float], seed: int, stop: Stop) -> None:
        from ..backends.interval import IntervalBackend

        super().__init__(model, stop)
        self._start(lambda: IntervalBackend().solve(
            model, SolveParams(time_limit=None, seed=seed, workers=1), start,
            stop=self.stop, on_plan=self._found), "gpualloc-interval")

    def _stats(self, r: BackendResult | None) -> dict[str, Any]:
        return {"interval_plans": self.found,
                "interval_status": r.stats.get("interval_status", r.status) if r else "running"}


class MipHelper(_Beside):
    """HiGHS branch and bound on the whole model in a thread, fed the LNS's incumbents; only
    on narrow windows (on wide ones HiGHS's presolve alone took 20 s on the medium shape and
    its bound stayed weak; time-indexed CP-SAT there spent the budget in its presolve on the
    loaded 2-core machine and found nothing: README)."""

    def __init__(self, model: LinearModel, start: list[float], seed: int, stop: Stop) -> None:
        from ..backends.mip import HighsBackend

        super().__init__(model, stop)
        self.fed: list[float] | None = None
        self.offers = 0
        self._start(lambda: HighsBackend().solve(
            model, SolveParams(time_limit=None, seed=seed, workers=1), list(start),
            stop=self.stop, feed=self._feed), "gpualloc-mip")

    def offer(self, values: list[float]) -> None:
        """A new LNS incumbent for HiGHS (a copy; HiGHS checks it)."""
        with self.lock:
            self.fed = list(values)
            self.offers += 1

    def _feed(self) -> list[float] | None:
        with self.lock:
            fed, self.fed = self.fed, None
        return fed

    def bound(self, fallback: float) -> float:
        """HiGHS's proven bound once it has returned, else ``fallback``."""
        r = self.result
        return r.bound if r is not None and r.bound is not None else fallback

    def _stats(self, r: BackendResult | None) -> dict[str, Any]:
        return {"mip_status": r.status if r else "running", "mip_offers": self.offers,
                "mip_bound": r.bound if r else None}


class SupportMip(_Beside):
    """HiGHS in a thread on ``search``'s incumbent with only ``free`` placements free (the LP's
    support and the incumbent's placements; see the module doc)."""

    def __init__(self, search: Search, free: list[int], seed: int, stop: Stop) -> None:
        from ..backends.mip import HighsBackend

        model = search.model
        super().__init__(model, stop)
        self.size = len(free)
        base = list(search.values)
        sub = search.sub_model(free)

        def lift(sub_values: list[float]) -> list[float]:
            values = list(base)
            for k, i in enumerate(free):
                values[i] = sub_values[k]
            return values

        def found(sub_values: list[float]) -> None:
            values = lift(sub_values)
            self._found(values, model.objective_value(values))

        def run() -> BackendResult:
            r = HighsBackend().solve(sub, SolveParams(time_limit=None, seed=seed, workers=1),
                                     [base[i] for i in free], stop=self.stop, on_plan=found)
            return BackendResult(r.status, None if r.values is None else lift(r.values),
                                 None, r.stats)

        self._start(run, "gpualloc-support-mip")

    def _stats(self, r: BackendResult | None) -> dict[str, Any]:
        return {"support_mip_status": r.status if r else "running",
                "support_mip_size": self.size, "support_mip_plans": self.found}

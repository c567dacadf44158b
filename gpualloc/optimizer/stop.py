"""One stop signal for a whole solve: a deadline plus an interrupt, handed to every phase.

Like PyVRP's ``MaxRuntime`` combined with an interrupt through ``MultipleCriteria``, but one
object: ``Stop(seconds)`` ends at a deadline on a monotonic clock (injectable for tests) or
when ``request()`` is called (from a signal handler, another thread or the CLI), whichever
comes first. ``child(fraction=...)`` or ``child(seconds=...)`` is a phase budget that still
ends with its parent; ``request()`` on a child ends the child only (a portfolio stops one
solver that way), while a request on the parent reaches every child.

Every loop checks ``stopped``; every native solver call gets ``remaining()`` as its time limit
and a way to be stopped (see the backends). ``StopRequested`` is what a phase raises when it
cannot produce anything useful before the stop (the model build, for one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class StopRequested(Exception):
    """A phase was stopped before it could finish; ``phase`` says which, ``why`` the cause."""

    def __init__(self, phase: str, why: str, detail: str = "") -> None:
        self.phase, self.why, self.detail = phase, why, detail
        super().__init__(f"{why} while {phase}" + (f" ({detail})" if detail else ""))


class Stop:
    """A deadline (``seconds`` from now, or none) and an interrupt event."""

    def __init__(self, seconds: float | None = None, *, clock: Clock = time.monotonic,
                 parent: Stop | None = None) -> None:
        if seconds is not None and seconds != seconds:  # NaN
            raise ValueError("seconds must be a number or None")
        self._clock = clock
        self._began = clock()
        self._deadline = None if seconds is None else self._began + seconds
        self._event = threading.Event()
        self._parent = parent

    # -- time --------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since this stop was made."""
        return self._clock() - self._began

    def remaining(self) -> float | None:
        """Seconds left before the deadline (itself or a parent's; may be negative), or None
        without a deadline."""
        mine = None if self._deadline is None else self._deadline - self._clock()
        theirs = None if self._parent is None else self._parent.remaining()
        if mine is None:
            return theirs
        return mine if theirs is None else min(mine, theirs)

    def budget(self, cap: float | None = None, floor: float = 0.01) -> float | None:
        """A native solver's time limit: ``remaining()`` capped at ``cap``, at least ``floor``
        (None when neither bounds it)."""
        left = self.remaining()
        if left is None:
            return cap
        left = max(floor, left)
        return left if cap is None else min(cap, left)

    def expired(self) -> bool:
        """Whether the deadline (own or a parent's) has passed."""
        left = self.remaining()
        return left is not None and left <= 0.0

    # -- interrupt ---------------------------------------------------------------------------
    def request(self) -> None:
        """Ask everything watching this stop (and its children) to end; thread and signal
        safe."""
        self._event.set()

    @property
    def interrupted(self) -> bool:
        """Whether ``request()`` was called on this stop or a parent."""
        return self._event.is_set() or (self._parent is not None and self._parent.interrupted)

    @property
    def stopped(self) -> bool:
        """Interrupted or expired: every loop checks this."""
        return self.interrupted or self.expired()

    def why(self) -> str | None:
        """``"interrupted"``, ``"time limit"`` or None while running."""
        if self.interrupted:
            return "interrupted"
        return "time limit" if self.expired() else None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (less when the deadline comes first), waking at once on a
        request to this stop; returns ``stopped``. For watcher threads, never for tests."""
        left = self.remaining()
        timeout = seconds if left is None else max(0.0, min(seconds, left))
        self._event.wait(timeout)
        return self.stopped

    # -- phases ------------------------------------------------------------------------------
    def child(self, fraction: float | None = None, seconds: float | None = None) -> Stop:
        """A phase's stop: at most ``seconds``, or ``fraction`` of what is left, and never past
        this stop's deadline or interrupt (both given: the smaller)."""
        limits = []
        if seconds is not None:
            limits.append(seconds)
        left = self.remaining()
        if fraction is not None and left is not None:
            limits.append(fraction * max(0.0, left))
        return Stop(min(limits) if limits else None, clock=self._clock, parent=self)

    def __repr__(self) -> str:
        left = self.remaining()
        when = "no deadline" if left is None else f"{left:.2f}s left"
        return f"Stop({when}{', interrupted' if self.interrupted else ''})"


def ensure(stop: Stop | None, time_limit: float | None) -> Stop:
    """``stop`` itself, or a new one for ``time_limit`` seconds."""
    return stop if stop is not None else Stop(time_limit)

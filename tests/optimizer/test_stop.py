"""The Stop object on a fake clock: deadlines, interrupts, child budgets (no sleeping)."""

from __future__ import annotations

import pytest

from gpualloc.optimizer.stop import Stop, StopRequested, ensure


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_deadline_runs_down_and_expires(clock: FakeClock) -> None:
    stop = Stop(10.0, clock=clock)
    assert stop.remaining() == 10.0 and not stop.expired() and not stop.stopped
    clock.now += 4.0
    assert stop.remaining() == 6.0 and stop.elapsed() == 4.0
    clock.now += 6.0
    assert stop.expired() and stop.stopped and not stop.interrupted
    assert stop.why() == "time limit"


def test_no_deadline_never_expires_but_can_be_interrupted(clock: FakeClock) -> None:
    stop = Stop(None, clock=clock)
    clock.now += 1e9
    assert stop.remaining() is None and not stop.stopped and stop.why() is None
    stop.request()
    assert stop.interrupted and stop.stopped and stop.why() == "interrupted"


def test_budget_caps_and_floors(clock: FakeClock) -> None:
    stop = Stop(5.0, clock=clock)
    assert stop.budget() == 5.0 and stop.budget(cap=2.0) == 2.0
    clock.now += 7.0
    assert stop.budget() == 0.01  # a native solver still gets a positive limit
    assert Stop(None, clock=clock).budget() is None
    assert Stop(None, clock=clock).budget(cap=3.0) == 3.0


def test_child_by_fraction_and_seconds_honours_the_parent(clock: FakeClock) -> None:
    parent = Stop(10.0, clock=clock)
    assert parent.child(fraction=0.5).remaining() == 5.0
    assert parent.child(seconds=3.0).remaining() == 3.0
    assert parent.child(fraction=0.5, seconds=3.0).remaining() == 3.0
    long = parent.child(seconds=60.0)  # never past the parent's deadline
    assert long.remaining() == 10.0
    clock.now += 10.0
    assert long.expired() and long.why() == "time limit"


def test_child_of_an_unbounded_parent(clock: FakeClock) -> None:
    parent = Stop(None, clock=clock)
    assert parent.child(fraction=0.5).remaining() is None
    assert parent.child(seconds=2.0).remaining() == 2.0


def test_interrupt_reaches_children_but_not_parents(clock: FakeClock) -> None:
    parent = Stop(10.0, clock=clock)
    a, b = parent.child(fraction=0.5), parent.child(fraction=0.5)
    a.request()
    assert a.stopped and not b.stopped and not parent.stopped
    grandchild = b.child(seconds=1.0)
    parent.request()
    assert b.interrupted and grandchild.interrupted and grandchild.why() == "interrupted"


def test_wait_returns_at_once_when_stopped(clock: FakeClock) -> None:
    stop = Stop(5.0, clock=clock)
    stop.request()
    assert stop.wait(3600.0) is True  # the event is set: no waiting
    expired = Stop(1.0, clock=clock)
    clock.now += 2.0
    assert expired.wait(3600.0) is True  # no time left: a zero timeout


def test_ensure_makes_one_from_a_time_limit() -> None:
    made = ensure(None, 7.0)
    left = made.remaining()
    assert left is not None and 6.0 < left <= 7.0
    given = Stop(None)
    assert ensure(given, 7.0) is given


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        Stop(float("nan"))


def test_stop_requested_says_what_and_why() -> None:
    e = StopRequested("building the model", "time limit", "120,000 placements")
    assert e.phase == "building the model" and e.why == "time limit"
    assert str(e) == "time limit while building the model (120,000 placements)"

"""SIGINT/SIGTERM during ``gpualloc solve``: the best plan so far is written, atomically, exit 130.

Real subprocesses (``python -m gpualloc.cli solve``) on a generated instance that is still being
searched after several seconds, with a 120 s time limit: an exit within 5 s of the signal shows
the signal stopped the search. The tests synchronise on conditions, never on a fixed wait: the
signal handlers are installed (``SigCgt`` in ``/proc/<pid>/status``) and the process tree has
since spent CPU time solving (and, for CBC, the CBC child process runs). Linux only (``/proc``).

A SIGKILLed solve never leaves a truncated plan: the out path holds the previous complete file
(or nothing), never a part.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpualloc.models import load_instance, load_plan, save_instance
from gpualloc.models.validator import validate
from gpualloc.sources.generate import generate
from tests.conftest import ALL_BACKENDS
from tests.strategies import random_instance

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists() or os.name != "posix",
                       reason="needs Linux /proc and POSIX signals"),
]

ROOT = Path(__file__).resolve().parents[1]
EXIT_INTERRUPTED = 130
EXIT_WITHIN = 5.0  # seconds from the signal to the process's end
STARTUP = 90.0  # generous: interpreter start and imports on a loaded machine
SOLVE_CPU = 2.0  # CPU seconds spent after the handlers are installed before we signal
TICK = os.sysconf("SC_CLK_TCK")


# -- instance -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 jobs, 26 periods (~9,000 placements): every backend still searches after 25 s."""
    path = tmp_path_factory.mktemp("interrupt") / "hard.json"
    save_instance(random_instance(1, jobs=300, periods=26, clusters=3, caps=3), path)
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shape users send, small: 600 jobs with wide windows (~50,000 placements, so
    ``auto`` runs the LNS strategy: greedy, Lagrangian, LP thread, sub-solves)."""
    path = tmp_path_factory.mktemp("interrupt") / "wide.json"
    save_instance(generate(6, 8, 600, 26, seed=7, windows="wide"), path)
    return path


@pytest.fixture(scope="module")
def wide_big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wide instance whose loading and model build take a while (~150,000 placements)."""
    path = tmp_path_factory.mktemp("interrupt") / "wide-big.json"
    save_instance(generate(10, 12, 1500, 40, seed=8, windows="wide"), path)
    return path


# -- /proc probes -------------------------------------------------------------------------------
def caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def handlers_installed(pid: int) -> bool:
    """SIGTERM is caught: ``solve`` has installed its handlers (Python catches SIGINT always)."""
    try:
        return bool(caught_signals(pid) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        return False


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live children."""
    total = 0.0
    for p in (pid, *children(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s or if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before: {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


def wait_solving(proc: subprocess.Popen, backend: str) -> None:
    """Until the handlers are installed and the solve has used ``SOLVE_CPU`` s of CPU since."""
    wait_until(lambda: handlers_installed(proc.pid), STARTUP, "signal handlers installed", proc)
    if backend == "cbc":
        wait_until(lambda: bool(children(proc.pid)), STARTUP, "the CBC process", proc)
    start = cpu_seconds(proc.pid)
    wait_until(lambda: cpu_seconds(proc.pid) - start >= SOLVE_CPU, STARTUP,
               f"{SOLVE_CPU} s of solving", proc)


# -- running ------------------------------------------------------------------------------------
def solve_command(instance: Path, plan: Path, backend: str, time_limit: float = 120) -> list[str]:
    return [sys.executable, "-m", "gpualloc.cli", "solve", str(instance), "--out", str(plan),
            "--time-limit", str(time_limit), "--workers", "1", "--backend", backend]


def start(args: list[str], **kw: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, cwd=ROOT, env=env, **kw)  # type: ignore[call-overload]


def wait_exit(proc: subprocess.Popen, signalled: float) -> float:
    try:
        proc.wait(timeout=EXIT_WITHIN + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the process did not end within 35 s of the signal")
    return time.monotonic() - signalled


def check_written_plan(instance: Path, plan_path: Path, backend: str) -> None:
    """Complete JSON, status feasible/optimal, valid, with its bound when the solver knows one."""
    text = plan_path.read_text(encoding="utf-8")
    data = json.loads(text)  # complete: a truncated file would not parse
    assert data["status"] in ("feasible", "optimal")
    assert "bound" in data and "gap" in data
    if backend != "greedy":
        assert data["bound"] is not None, "an interrupted exact solver still knows a bound"
        assert data["bound"] >= data["objective"] - 1e-6 * max(1.0, abs(data["bound"]))
    inst = load_instance(instance)
    plan = load_plan(plan_path)
    assert validate(inst, plan) == []
    leftovers = [p.name for p in plan_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], "the atomic write left temporary files"


# -- tests --------------------------------------------------------------------------------------
# Both signals take the same path in the CLI; SIGTERM matters most for CBC (a terminal's
# Ctrl-C reaches the CBC child too, a SIGTERM to the parent does not).
CASES = [(b, s) for b, s in (("cpsat", signal.SIGINT), ("cpsat", signal.SIGTERM),
                             ("highs", signal.SIGINT), ("cbc", signal.SIGTERM))
         if b in ALL_BACKENDS]


@pytest.mark.parametrize("backend, sig", CASES,
                         ids=[f"{b}-{signal.Signals(s).name}" for b, s in CASES])
def test_signal_writes_the_best_plan_and_exits_130(hard: Path, tmp_path: Path, backend: str,
                                                   sig: int) -> None:
    plan = tmp_path / "plan.json"
    proc = start(solve_command(hard, plan, backend), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    try:
        wait_solving(proc, backend)
        assert not plan.exists()
        signalled = time.monotonic()
        proc.send_signal(sig)
        took = wait_exit(proc, signalled)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    stderr_text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr_text, stderr_text[-3000:]
    assert proc.returncode == EXIT_INTERRUPTED, stderr_text[-3000:]
    assert took <= EXIT_WITHIN, f"exited {took:.1f} s after the signal"
    assert "interrupted" in stderr_text
    check_written_plan(hard, plan, backend)


def test_signal_with_the_live_display_on_a_terminal(hard: Path, tmp_path: Path) -> None:
    """With stdout a terminal the live line shows; SIGINT then works just the same."""
    plan = tmp_path / "plan.json"
    master, slave = pty.openpty()
    proc = start(solve_command(hard, plan, "cpsat"), stdin=subprocess.DEVNULL, stdout=slave,
                 stderr=slave)
    os.close(slave)
    seen = bytearray()
    lock = threading.Lock()

    def drain() -> None:  # keep reading, or the child blocks on a full terminal buffer
        while True:
            try:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    chunk = os.read(master, 65536)
                    if not chunk:
                        return
                    with lock:
                        seen.extend(chunk)
                elif proc.poll() is not None:
                    return
            except OSError:  # EIO: the child closed the terminal
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_until(lambda: b"incumbent" in seen, STARTUP, "the live incumbent line", proc)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        took = wait_exit(proc, signalled)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        os.close(master)
    text = bytes(seen).decode("utf-8", "replace")
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode == EXIT_INTERRUPTED, text[-3000:]
    assert took <= EXIT_WITHIN
    check_written_plan(hard, plan, "cpsat")


def test_sigkill_mid_solve_leaves_the_previous_plan_whole(hard: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    previous = '{"note": "a previous, complete plan file"}\n'
    plan.write_text(previous, encoding="utf-8")
    proc = start(solve_command(hard, plan, "cpsat"), stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    try:
        wait_solving(proc, "cpsat")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert plan.read_text(encoding="utf-8") == previous


def test_sigkill_while_writing_never_leaves_a_truncated_plan(hard: Path, tmp_path: Path) -> None:
    """Kill the process the moment its temporary plan file appears (or whenever it ends):
    the out path is then the old file or the complete new one, never a part of either."""
    plan = tmp_path / "plan.json"
    previous = '{"note": "a previous, complete plan file"}\n'
    plan.write_text(previous, encoding="utf-8")
    proc = start(solve_command(hard, plan, "greedy", time_limit=5), stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)

    def writing_or_done() -> bool:
        return proc.poll() is not None or any(
            p.name.startswith(".plan.json.") for p in tmp_path.iterdir())

    try:
        deadline = time.monotonic() + STARTUP
        while not writing_or_done():  # a tight poll: the write takes milliseconds
            assert time.monotonic() < deadline, "no plan written"
            time.sleep(0.001)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = plan.read_text(encoding="utf-8")
    if text != previous:
        data = json.loads(text)  # the complete new plan
        assert data["status"] in ("feasible", "optimal")


def test_signal_during_the_wide_lns_solve(wide: Path, tmp_path: Path) -> None:
    """Greedy, Lagrangian, LP thread and CP-SAT sub-solves all see the stop."""
    plan = tmp_path / "plan.json"
    proc = start(solve_command(wide, plan, "cpsat"), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    try:
        wait_solving(proc, "cpsat")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        took = wait_exit(proc, signalled)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode == EXIT_INTERRUPTED, text[-3000:]
    assert took <= EXIT_WITHIN, f"exited {took:.1f} s after the signal"
    if plan.exists():  # stopped in the search: the best plan so far, whole and valid
        check_written_plan(wide, plan, "greedy")
    else:  # stopped before there was a plan: it says so
        assert "no plan" in text


def test_signal_while_loading_or_building_ends_at_once(wide_big: Path, tmp_path: Path) -> None:
    """A signal the moment the handlers are up (the instance is being loaded or its model
    built): exit 130 within seconds, and no plan file, or a complete valid one."""
    plan = tmp_path / "plan.json"
    proc = start(solve_command(wide_big, plan, "cpsat"), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    try:
        wait_until(lambda: handlers_installed(proc.pid), STARTUP, "signal handlers installed",
                   proc)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        took = wait_exit(proc, signalled)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode == EXIT_INTERRUPTED, text[-3000:]
    assert took <= EXIT_WITHIN, f"exited {took:.1f} s after the signal"
    assert "interrupted" in text
    if plan.exists():
        check_written_plan(wide_big, plan, "greedy")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "plan.json"]
    assert leftovers == []

"""Trade-off curves (analysis.pareto): every point's plan valid, optimal against brute force."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gpualloc.analysis.pareto import _floors, pareto, plot_pareto
from gpualloc.models import Instance, SolveStatus
from gpualloc.models.rules import assignment_cost
from gpualloc.models.validator import validate
from gpualloc.optimizer import solve
from tests.conftest import close
from tests.models.test_tranches import (
    TOL,
    brute_capacity_ok,
    brute_share,
    brute_tranche_ok,
    every_plan,
    tiny,
)


def contested_data() -> dict:
    """a and b compete for the H800 pool: b's big option (value 10) takes all of it for 2 of
    the 3 periods, leaving no room for a; its small one (value 1) leaves room for one a job."""
    data = tiny(values=(3, 2, 4), lengths=(2, 2, 2), gpus=4, periods=3, credits=None)
    for job in data["jobs"][:3]:
        job["options"] = job["options"][:1]
    data["jobs"][3]["value"] = 10
    data["jobs"][3]["options"] = [{"accelerator": "H800", "gpus": 4, "periods": 2},
                                  {"accelerator": "H800", "gpus": 2, "periods": 2, "value": 1}]
    return data


@pytest.fixture(scope="module")
def contested() -> Instance:
    return Instance.model_validate(contested_data())


def brute(inst: Instance, keep) -> float:
    best = None
    for combo in every_plan(inst):
        if brute_capacity_ok(inst, combo) and brute_tranche_ok(inst, combo) and keep(combo):
            v = sum(x.value for x in combo)  # weights are 1
            best = v if best is None else max(best, v)
    assert best is not None
    return best


def test_fairness_curve_matches_brute_force(contested: Instance) -> None:
    curve = pareto(contested, "fairness", 4, time_limit=20)
    assert len(curve.points) == 4 and curve.points[0].level == 0.0
    m_star = max(min(brute_share(contested, c, s) for s in ("a", "b"))
                 for c in every_plan(contested) if brute_capacity_ok(contested, c))
    assert close(curve.points[-1].level, m_star) and curve.stage1["status"] == "optimal"
    for p in curve.points:
        assert validate(_floors(contested, p.level), p.plan) == []
        want = brute(contested, lambda c, lv=p.level: all(
            brute_share(contested, c, s) >= lv - TOL for s in ("a", "b")))
        assert p.plan.status == SolveStatus.OPTIMAL and close(p.objective, want)
    values = [p.objective for p in curve.points]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_spend_curve_matches_brute_force(contested: Instance) -> None:
    curve = pareto(contested, "spend", 3, time_limit=20)
    for p in curve.points:
        assert validate(contested, p.plan) == []
        spend = sum(assignment_cost(contested, a) for a in p.plan.assignments)
        assert spend <= p.level * (1 + 1e-9) and close(p.achieved, spend)
        want = brute(contested, lambda c, lv=p.level: sum(
            assignment_cost(contested, x) for x in c) <= lv + TOL)
        assert close(p.objective, want)


def test_stability_curve_caps_changes(contested: Instance) -> None:
    data = contested_data()
    data["jobs"][3]["value"] = 0.5  # before: b's big job was worth little: a ran instead
    old = Instance.model_validate(data)
    previous = solve(old, "cpsat", time_limit=20)
    curve = pareto(contested, "stability", 3, previous=previous, now=0, time_limit=20)
    assert curve.points
    for p in curve.points:
        assert validate(contested, p.plan) == []
        assert p.achieved is not None and p.achieved <= p.level
    values = [p.objective for p in curve.points]
    assert values == sorted(values) and values[0] < values[-1]
    assert curve.points[0].level == 0.0  # the previous plan is still valid: no change needed


def test_parallel_points_agree_with_serial(contested: Instance) -> None:
    serial = pareto(contested, "fairness", 3, time_limit=20)
    parallel = pareto(contested, "fairness", 3, time_limit=20, workers=2)
    assert [p.objective for p in serial.points] == [p.objective for p in parallel.points]


def test_plot_draws_on_the_given_axes_with_an_envelope(contested: Instance) -> None:
    from matplotlib.figure import Figure

    curve = pareto(contested, "spend", 2, time_limit=20)
    ax = Figure().add_subplot()
    assert plot_pareto(curve, ax) is ax
    assert ax.collections  # the bound envelope
    assert tuple(ax.get_lines()[0].get_ydata()) == tuple(p.objective for p in curve.points)


def test_cli(tmp_path: Path, contested: Instance) -> None:
    from gpualloc.cli import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(contested.model_dump(mode="json", by_alias=True)))
    runner = CliRunner()
    csv = tmp_path / "p.csv"
    result = runner.invoke(app, ["pareto", str(path), "--points", "2", "--csv", str(csv),
                                 "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert "Value against fairness" in result.output
    assert csv.read_text().splitlines()[0].startswith("against,level,achieved")
    assert (tmp_path / "p.png").stat().st_size > 0
    for args in (["--against", "nope"], ["--against", "stability"], ["--points", "0"]):
        bad = runner.invoke(app, ["pareto", str(path), *args])
        assert bad.exit_code == 2, (args, bad.output)


def test_stability_points_on_dask_match_serial(contested: Instance) -> None:
    """previous, now and limits travel with the tasks to the workers."""
    distributed = pytest.importorskip("distributed")
    import dask

    data = contested_data()
    data["jobs"][3]["value"] = 0.5
    previous = solve(Instance.model_validate(data), "cpsat", time_limit=20)
    serial = pareto(contested, "stability", 3, previous=previous, now=0, time_limit=20)
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster:
        on_dask = pareto(contested, "stability", 3, previous=previous, now=0, time_limit=20,
                         dask_address=cluster.scheduler_address)
    assert [(p.level, p.objective, p.achieved) for p in on_dask.points] == \
        [(p.level, p.objective, p.achieved) for p in serial.points]

"""marginal and caps output: zero-gain rows apart, periods in numeric order, --splits checked,
near-binding caps priced, rates in readable units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from gpualloc.analysis.marginal import MarginalValue, _ranked, cap_report
from gpualloc.cli import app
from gpualloc.models import Instance
from gpualloc.models.validator import validate

runner = CliRunner()


def _mv(item: str, periods: tuple[int, int], gain: float) -> MarginalValue:
    return MarginalValue("pool", f"{item} [{periods[0]}-{periods[1]}]", "GPU-period", 8.0,
                         8.0, gain, gain / 8.0, "optimal", target=item, periods=periods)


def test_ranking_keeps_zero_gain_apart_and_orders_periods_numerically() -> None:
    values = [_mv("p", (13, 18), 0.0), _mv("p", (6, 12), 0.0), _mv("p", (0, 5), 0.0),
              _mv("q", (19, 25), 4.0), _mv("q", (6, 12), 8.0)]
    ranked = _ranked(values)
    assert [(v.item, v.rank) for v in ranked] == [
        ("q [6-12]", 1), ("q [19-25]", 2), ("p [0-5]", 0), ("p [6-12]", 0), ("p [13-18]", 0)]


def test_splits_must_be_an_offered_value(tmp_path: Path) -> None:
    r = runner.invoke(app, ["marginal", "--splits", "3"])
    assert r.exit_code == 2
    assert "--splits must be 2 or 4, not 3" in r.output


NEAR: dict[str, Any] = {
    "name": "near",
    "horizon": {"periods": 1, "period_hours": 1},
    "clusters": [{"id": "c", "region": "r", "country": "US", "pools": [
        {"accelerator": "L20", "gpus": 2000, "price_per_gpu_hour": 0}]}],
    "startups": [{"id": "s"}],
    "jobs": [{"id": "big", "startup": "s", "value": 10,
              "options": [{"accelerator": "L20", "gpus": 993, "periods": 1}]},
             {"id": "small", "startup": "s", "value": 5,
              "options": [{"accelerator": "L20", "gpus": 8, "periods": 1}]}],
    # big uses 99.3% of the cap: not binding, but small (8 more) does not fit under it
    "caps": [{"id": "k", "metric": "gpus", "per": "period", "limit": 1000}],
}


def test_near_binding_caps_are_priced(tmp_path: Path) -> None:
    inst = Instance.model_validate(NEAR)
    rep = cap_report(inst, time_limit=20)
    assert validate(inst, rep.plan) == [] and rep.plan.objective == 10
    line = rep.lines[0]
    assert (line.binding, line.near_binding) == (0, 1)
    assert line.looser_gain == 5  # 10% looser: small fits too
    assert line.looser_plan is not None
    path = tmp_path / "near.yaml"
    path.write_text(yaml.safe_dump(NEAR))
    r = runner.invoke(app, ["caps", str(path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "1 near-binding (>= 99% of the limit)" in r.output
    assert "10.0% looser adds +5" in r.output and "near" in r.output

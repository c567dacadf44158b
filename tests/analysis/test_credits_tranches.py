"""Honourable credits per tranche (analysis.credits.TrancheLine) against brute force."""

from __future__ import annotations

from gpualloc.analysis.credits import honourable_credits
from gpualloc.models import Instance
from gpualloc.models.rules import period_spend
from tests.conftest import close
from tests.models.test_tranches import brute_capacity_ok, every_plan, tiny


def test_per_tranche_honourable_credits_match_brute_force() -> None:
    inst = Instance.model_validate(tiny([{"from": 0, "credits": 3}, {"from": 2, "credits": 4}],
                                        values=(3, 2, 4), lengths=(2, 1, 3)))
    rep = honourable_credits(inst, time_limit=20, fleet=False)
    line = next(x for x in rep.lines if x.startup == "a")
    assert [t.periods for t in line.tranches] == [(0, 1), (2, 3)]
    plans = [c for c in every_plan(inst) if brute_capacity_ok(inst, c)]  # a's limits removed
    for t in line.tranches:
        first, last = t.periods
        best = max(sum(period_spend(inst, c)["a"][first:last + 1]) for c in plans)
        assert t.status == "optimal" and close(t.honourable, best)
        assert close(t.headroom, best - t.credits)
    assert next(x for x in rep.lines if x.startup == "b").tranches == ()

"""PuLP adapters: CBC (bundled command-line binary) and HiGHS (through highspy).

PuLP calls a time-limited MIP "Optimal"; these adapters read the solver's own status and
bound instead: CBC's closing report (``Result -``, ``Objective value``, ``Upper bound``) and
HiGHS's ``mip_dual_bound``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time

from ..formulation import LinearModel
from .base import BackendResult, ProgressCallback, SolveParams


def _build(model: LinearModel, start: list[float] | None):  # noqa: ANN202 - pulp objects
    import pulp

    prob = pulp.LpProblem("gpualloc", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{i}", cat=pulp.LpBinary) for i in range(model.num_vars)]
    prob.setObjective(pulp.LpAffineExpression(
        [(x[i], c) for i, c in enumerate(model.objective) if c != 0.0]))
    senses = {"<=": pulp.LpConstraintLE, ">=": pulp.LpConstraintGE, "==": pulp.LpConstraintEQ}
    for k, row in enumerate(model.rows):
        expr = pulp.LpAffineExpression(
            [(x[i], c) for i, c in zip(row.vars, row.coefs, strict=True)])
        prob.addConstraint(pulp.LpConstraint(expr, senses[row.sense], f"r{k}", row.rhs))
    if start is not None:
        for var, v in zip(x, start, strict=True):
            var.setInitialValue(1.0 if v > 0.5 else 0.0)
    return prob, x


def _values(x: list) -> list[float] | None:  # noqa: ANN001
    vals = [v.varValue for v in x]
    if any(v is None for v in vals):
        return None
    return [1.0 if v > 0.5 else 0.0 for v in vals]


class CbcBackend:
    """COIN-OR CBC through PuLP's bundled binary."""

    name = "cbc"

    def available(self) -> bool:
        try:
            import pulp
        except ImportError:
            return False
        return bool(pulp.PULP_CBC_CMD(msg=False).available())

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None) -> BackendResult:
        import pulp

        began = time.perf_counter()
        prob, x = _build(model, start)
        fd, log_path = tempfile.mkstemp(prefix="gpualloc-cbc-", suffix=".log")
        os.close(fd)
        try:
            remaining = None
            if params.time_limit is not None:
                remaining = max(1, math.floor(params.time_limit - (time.perf_counter() - began)))
            solver = pulp.PULP_CBC_CMD(
                msg=False, timeLimit=remaining, gapRel=params.gap_tolerance,
                threads=max(1, params.workers), warmStart=start is not None, logPath=log_path,
                options=[f"randomSeed {params.seed + 1}", f"randomCbcSeed {params.seed + 1}"])
            prob.solve(solver)
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                log = fh.read()
        finally:
            os.unlink(log_path)
        return _read_cbc(log, _values(x), prob.sol_status)


def _read_cbc(log: str, values: list[float] | None, sol_status: int) -> BackendResult:
    """Status and bound from CBC's closing report."""
    result = re.search(r"^Result - (.+)$", log, re.M)
    verdict = result.group(1).strip() if result else ""
    objective = _number(log, "Objective value")
    bound = _number(log, "Upper bound")
    stats = {"cbc_result": verdict}
    if "infeasible" in verdict.lower():
        return BackendResult("infeasible", None, None, stats)
    has_solution = values is not None and sol_status in (1, 2)
    if verdict.startswith("Optimal solution found") and has_solution:
        return BackendResult("optimal", values, objective, stats)
    if has_solution:
        return BackendResult("feasible", values, bound, stats)
    return BackendResult("unknown", None, bound, stats)


def _number(log: str, label: str) -> float | None:
    m = re.search(rf"^{label}:\s+(\S+)", log, re.M)
    if not m:
        return None
    try:
        value = float(m.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_banner_shown = False


def _swallow_highs_banner() -> None:
    """HiGHS prints a banner to fd 1 on its first construction; the library never prints."""
    global _banner_shown
    if _banner_shown:
        return
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _banner_shown = True


class HighsBackend:
    """HiGHS through PuLP's highspy interface (warm start via ``setSolution``)."""

    name = "highs"

    def available(self) -> bool:
        try:
            import highspy  # noqa: F401
            import pulp
        except ImportError:
            return False
        return bool(pulp.HiGHS(msg=False).available())

    def solve(self, model: LinearModel, params: SolveParams, start: list[float] | None = None,
              progress: ProgressCallback | None = None) -> BackendResult:
        import highspy
        import pulp

        began = time.perf_counter()
        _swallow_highs_banner()
        prob, x = _build(model, start)

        class _Highs(pulp.HiGHS):
            def callSolver(self, lp):  # noqa: ANN001, ANN202, N802 - PuLP's hook
                if start is not None:
                    sol = highspy.HighsSolution()
                    order = {v.name: v.index for v in lp.variables()}
                    col = [0.0] * len(order)
                    for var in x:
                        col[order[var.name]] = var.varValue or 0.0
                    sol.col_value = col
                    sol.value_valid = True
                    lp.solverModel.setSolution(sol)
                lp.solverModel.run()

        remaining = None
        if params.time_limit is not None:
            remaining = max(0.01, params.time_limit - (time.perf_counter() - began))
        solver = _Highs(msg=params.log, timeLimit=remaining, gapRel=params.gap_tolerance,
                        threads=max(1, params.workers), random_seed=params.seed,
                        mip_feasibility_tolerance=1e-7)
        prob.solve(solver)
        h = prob.solverModel
        info = h.getInfo()
        status = h.getModelStatus()
        ms = highspy.HighsModelStatus
        stats = {"highs_status": h.modelStatusToString(status),
                 "nodes": int(getattr(info, "mip_node_count", 0))}
        dual = getattr(info, "mip_dual_bound", None)
        # PuLP hands HiGHS the negated objective: the dual bound of -f bounds f from above.
        bound = -dual if dual is not None and math.isfinite(dual) else None
        has_solution = info.primal_solution_status == 2
        values = _values(x) if has_solution else None
        if status == ms.kInfeasible:
            return BackendResult("infeasible", None, None, stats)
        if status == ms.kOptimal and values is not None:
            return BackendResult("optimal", values, bound, stats)
        if values is not None:
            return BackendResult("feasible", values, bound, stats)
        return BackendResult("unknown", None, bound, stats)

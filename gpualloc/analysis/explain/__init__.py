"""Why a plan is what it is: ``explain(instance, plan=None) -> Explanation``.

An infeasible instance gets the conflicting requirements and the smallest relaxation that makes
it feasible, checked by re-solving (``infeasibility.py``, with the structural checks in
``chains.py`` and the elastic model in ``elastic.py``). A feasible plan gets a reason per
unscheduled job (``unscheduled.py``). The result types live in ``explanation.py``.
"""

from __future__ import annotations

from ...models import Instance, Plan, SolveStatus
from ...optimizer.backends import Backend, get_backend
from .explanation import Explanation, JobReason, Relaxation, Requirement
from .explanation import ReasonKind as ReasonKind
from .explanation import RelaxationKind as RelaxationKind
from .explanation import RequirementKind as RequirementKind
from .infeasibility import _explain_infeasible
from .unscheduled import _explain_feasible

DEFAULT_MAX_JOBS = 20
DEFAULT_JOB_TIME_LIMIT = 2.0


def explain(instance: Instance, plan: Plan | None = None, *, backend: str | Backend = "cpsat",
            time_limit: float = 10.0, max_jobs: int = DEFAULT_MAX_JOBS,
            job_time_limit: float = DEFAULT_JOB_TIME_LIMIT, seed: int = 0) -> Explanation:
    """Explain ``plan`` (solved here when None): conflicts and relaxations of an infeasible
    instance, or a reason per unscheduled job of a feasible one (see the module docstring)."""
    from ...optimizer.solve import solve

    if time_limit <= 0 or job_time_limit <= 0:
        raise ValueError("time limits must be positive")
    if max_jobs < 0:
        raise ValueError("max_jobs must be >= 0")
    engine = get_backend(backend) if isinstance(backend, str) else backend
    notes: list[str] = []
    if plan is None:
        plan = solve(instance, engine, time_limit=time_limit, seed=seed)
    elif plan.instance != instance.name:
        notes.append(f"the plan is for instance {plan.instance!r}, not {instance.name!r}")
    if plan.status == SolveStatus.INFEASIBLE or not plan.is_feasible:
        ex = _explain_infeasible(instance, engine, time_limit, seed)
        ex.plan = plan
        if plan.status == SolveStatus.UNKNOWN:
            ex.notes.insert(0, "the solver found no plan in time; analysed as infeasible")
            if not ex.relaxations and not ex.conflicts:
                ex.notes.append("the elastic model needs no relaxation: the instance is "
                                "feasible, the solve ran out of time")
        ex.notes[:0] = notes
        return ex
    ex = _explain_feasible(instance, plan, engine, max_jobs, job_time_limit, seed)
    ex.notes[:0] = notes
    return ex


def job_reasons(instance: Instance, plan: Plan, *, backend: str | Backend = "cpsat",
                max_jobs: int = 0, job_time_limit: float = DEFAULT_JOB_TIME_LIMIT,
                seed: int = 0) -> list[JobReason]:
    """explain's reason for every job a feasible ``plan`` leaves out, in plan order; with the
    default ``max_jobs=0`` no job is forced in, so no solver runs (the report uses this)."""
    if not plan.is_feasible:
        raise ValueError("job reasons need a feasible plan; explain an infeasible one")
    engine = get_backend(backend) if isinstance(backend, str) else backend
    return _explain_feasible(instance, plan, engine, max_jobs, job_time_limit, seed).jobs


__all__ = ["DEFAULT_MAX_JOBS", "Explanation", "JobReason", "Relaxation", "Requirement",
           "explain", "job_reasons"]

"""Import jobs from a spreadsheet CSV into an instance.

The CSV has a header row naming its columns (any order, case and surrounding spaces ignored)
and one row per job option; several rows with the same ``id`` are several options of one job.

=============  ========  ==================================================================
column         required  meaning
=============  ========  ==================================================================
id             yes       job id (rows with the same id are options of one job)
startup        yes       start-up id (in at least one row of the job)
value          no        strategic value of the job, a non-negative number (default 0)
release        no        earliest start period, a non-negative integer (default 0)
deadline       no        the job must end by this period, an integer (default: the horizon)
mandatory      no        true/false, yes/no or 1/0 (default false)
after          no        ids of jobs that must run and end first, separated by ``;``
accelerator    yes       the option's accelerator, e.g. ``H800``
gpus           yes       the option's GPUs, a positive integer
periods        yes       the option's duration in periods, a positive integer
option_value   no        the option's value if it differs from the job's ``value``
clusters       no        clusters the job may run on, separated by ``;`` (default: any)
regions        no        regions the job may run in, separated by ``;`` (default: any)
=============  ========  ==================================================================

Job columns (``startup`` .. ``after``, ``clusters``, ``regions``) may be left blank in the
further rows of a job; where several rows give one, they must agree. Blank rows are skipped.
The file is UTF-8 (a byte-order mark, as spreadsheet programs write, is fine), comma
separated, with standard CSV quoting.

Every problem is reported at once, in one ``InstanceError`` whose issues are located by
spreadsheet row (the header is row 1) and column: ``jobs.csv row 4, column gpus: expected a
positive integer, got 'x'``: the header's, every cell's, ids the instance already has, and
what validating the instance with the jobs added finds (unknown references, windows, cycles),
located in the CSV in the same way. Writing the result re-serialises the instance, so the
comments of its YAML file are not kept (``gpualloc import-jobs`` says so).
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.checks import semantic_issues
from ..models.errors import InstanceError, InstanceWarning, Issue
from ..models.instance import Instance
from ..models.io import instance_from_mapping, max_input_bytes

COLUMNS = ("id", "startup", "value", "release", "deadline", "mandatory", "after", "accelerator",
           "gpus", "periods", "option_value", "clusters", "regions")
REQUIRED = ("id", "startup", "accelerator", "gpus", "periods")
JOB_COLUMNS = ("startup", "value", "release", "deadline", "mandatory", "after", "clusters",
               "regions")
OPTION_COLUMNS = ("accelerator", "gpus", "periods", "option_value")

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_INT = re.compile(r"[+-]?\d+(\.0*)?")


@dataclass
class CsvJob:
    """One job read from the CSV: its mapping (as in an instance file) and where it came from.

    ``rows[k]`` is the spreadsheet row of option ``k``; ``cells[column]`` the row that gave a
    job column.
    """

    id: str
    rows: list[int] = field(default_factory=list)
    cells: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    options: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)  # rows with a cell problem

    def mapping(self) -> dict[str, Any]:
        job = {"id": self.id}
        job.update((k, self.fields[k]) for k in JOB_COLUMNS if k in self.fields)
        job["options"] = [dict(o) for o in self.options]
        return job


class _Cells:
    """Parses the cells of one row, collecting located issues."""

    def __init__(self, label: str, row: int, record: Mapping[str, str | None],
                 issues: list[Issue]) -> None:
        self.label, self.row, self.record, self.issues = label, row, record, issues
        self.bad_cells = 0

    def where(self, column: str) -> str:
        return f"{self.label} row {self.row}, column {column}"

    def bad(self, column: str, expected: str) -> None:
        self.bad_cells += 1
        self.issues.append(Issue(self.where(column),
                                 f"expected {expected}, got {self.record.get(column)!r}"))

    def text(self, column: str) -> str:
        return (self.record.get(column) or "").strip()

    def string(self, column: str, required: bool = False) -> str | None:
        value = self.text(column)
        if not value:
            if required and column in self.record:  # a missing column: reported in row 1
                self.bad_cells += 1
                self.issues.append(Issue(self.where(column), "missing: this cell is required"))
            return None
        return value

    def integer(self, column: str, minimum: int, required: bool = False) -> int | None:
        value = self.text(column)
        if not value:
            return self.string(column, required)  # None, reported if required
        what = "a positive integer" if minimum > 0 else "a non-negative integer"
        if not _INT.fullmatch(value):
            self.bad(column, what)
            return None
        number = int(float(value)) if "." in value else int(value)
        if number < minimum:
            self.bad(column, what)
            return None
        return number

    def number(self, column: str) -> float | None:
        value = self.text(column)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            self.bad(column, "a non-negative number")
            return None
        return number

    def boolean(self, column: str) -> bool | None:
        value = self.text(column).lower()
        if not value:
            return None
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        self.bad(column, "true or false (also yes/no, 1/0)")
        return None

    def ids(self, column: str) -> list[str] | None:
        parts = [p.strip() for p in self.text(column).split(";")]
        found = [p for p in parts if p]
        return found or None


def parse_jobs_csv(text: str, label: str = "jobs.csv") -> list[CsvJob]:
    """Parse CSV text into jobs (in order of first appearance) or raise a located error with
    every problem of the file.

    ``label`` names the file in issue locations (``<label> row 4, column gpus``).
    """
    jobs, issues = _parse(text, label)
    if issues:
        raise InstanceError(issues)
    return jobs


def _parse(text: str, label: str) -> tuple[list[CsvJob], list[Issue]]:
    """The jobs that parse and every problem found (header and rows alike); raises only when
    the file has no header or is not CSV at all."""
    text = text.removeprefix("\ufeff")
    issues: list[Issue] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        for n, cells in enumerate(reader, start=1):
            records.append((n, cells))
    except csv.Error as e:
        raise InstanceError([Issue(f"{label} row {len(records) + 1}",
                                   f"malformed CSV: {e}")]) from None
    if not records or not any(c.strip() for c in records[0][1]):
        raise InstanceError([Issue(f"{label} row 1", "expected a header row naming the "
                                   f"columns ({', '.join(COLUMNS)})")])
    header = [c.strip().lower() for c in records[0][1]]
    for k, name in enumerate(header):
        where = f"{label} row 1, column {name or k + 1}"
        if not name:
            issues.append(Issue(where, "a column without a name"))
        elif name not in COLUMNS:
            issues.append(Issue(where, f"unknown column {name!r}"
                                + _hint(name, COLUMNS)))
        elif header.index(name) != k:
            issues.append(Issue(where, f"column {name!r} appears twice"))
    for name in REQUIRED:
        if name not in header:
            issues.append(Issue(f"{label} row 1", f"missing column {name!r}"))
    known = {name: k for k, name in enumerate(header) if name in COLUMNS
             and header.index(name) == k}

    jobs: dict[str, CsvJob] = {}
    for n, cells in records[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            extra = [c for c in cells[len(header):] if c.strip()]
            if extra:
                issues.append(Issue(f"{label} row {n}", f"{len(cells)} cells but the header "
                                    f"names {len(header)} columns"))
                continue
        record = {name: (cells[k] if k < len(cells) else None) for name, k in known.items()}
        row = _Cells(label, n, record, issues)
        ident = row.string("id", required=True)
        if ident is None:
            continue
        job = jobs.setdefault(ident, CsvJob(ident))
        _job_cells(job, row)
        option: dict[str, Any] = {"accelerator": row.string("accelerator", required=True),
                                  "gpus": row.integer("gpus", 1, required=True),
                                  "periods": row.integer("periods", 1, required=True)}
        value = row.number("option_value")
        if value is not None:
            option["value"] = value
        job.rows.append(n)
        job.options.append(option)
        if row.bad_cells:
            job.bad_rows.add(n)
    if not jobs and not issues:
        issues.append(Issue(f"{label} row 2", "no jobs: the file has a header but no rows"))
    for job in jobs.values():
        if "startup" not in job.fields and job.rows and "startup" in known:
            issues.append(Issue(f"{label} row {job.rows[0]}, column startup",
                                f"missing: job {job.id!r} names no start-up in any row"))
    return list(jobs.values()), issues


def _job_cells(job: CsvJob, row: _Cells) -> None:
    parsed: dict[str, Any] = {
        "startup": row.string("startup"),
        "value": row.number("value"),
        "release": row.integer("release", 0),
        "deadline": row.integer("deadline", 0),
        "mandatory": row.boolean("mandatory"),
        "after": row.ids("after"),
        "clusters": row.ids("clusters"),
        "regions": row.ids("regions"),
    }
    for column, value in parsed.items():
        if value is None:
            continue
        if column not in job.fields:
            job.fields[column] = value
            job.cells[column] = row.row
        elif job.fields[column] != value:
            first = job.cells[column]
            row.issues.append(Issue(row.where(column), f"{row.text(column)!r} conflicts with "
                                    f"row {first} of job {job.id!r} ({_show(job.fields[column])});"
                                    " leave it blank or repeat the same value"))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return repr(";".join(value))
    return repr(value)


def _hint(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


def read_jobs_csv(path: str | Path) -> list[CsvJob]:
    """Read and parse a jobs CSV file (see the module docstring)."""
    path = Path(path)
    try:
        return parse_jobs_csv(_read_text(path), path.name)
    except InstanceError as e:
        raise InstanceError(e.issues, str(path)) from None


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, at most the input limit), or a located error."""
    source = str(path)
    limit = max_input_bytes()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as e:
        raise InstanceError([Issue("", f"cannot read jobs CSV: {e.strerror or e}")],
                            source) from None
    if len(raw) > limit:
        raise InstanceError([Issue("", f"file is over the {limit / 2**20:.0f} MiB input limit "
                                   "(set GPUALLOC_MAX_INPUT_MB to raise it)")], source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InstanceError([Issue(f"byte {e.start}", "file is not UTF-8 text; save the "
                                   "spreadsheet as CSV UTF-8")], source) from None


_JOB_LOC = re.compile(r"jobs\[(\d+)\](?:\.([A-Za-z_]+)(?:\[(\d+)\])?(?:\.([A-Za-z_]+))?)?(.*)")


def _csv_location(loc: str, first_new: int, jobs: list[CsvJob], label: str,
                  instance_label: str) -> str:
    """``jobs[12].options[1].gpus`` of the combined instance -> ``jobs.csv row 7, column gpus``."""
    m = _JOB_LOC.fullmatch(loc)
    if not m or int(m.group(1)) < first_new or int(m.group(1)) - first_new >= len(jobs):
        return f"{instance_label} {loc}".strip() if loc else instance_label
    job = jobs[int(m.group(1)) - first_new]
    name, index, sub, rest = m.group(2), m.group(3), m.group(4), m.group(5)
    if name == "options" and index is not None and int(index) < len(job.rows):
        row = job.rows[int(index)]
        column = {"value": "option_value"}.get(sub or "", sub)
        return f"{label} row {row}, column {column}" if column else f"{label} row {row}"
    if name == "options":
        rows = ", ".join(str(r) for r in job.rows)
        return f"{label} row{'s' * (len(job.rows) > 1)} {rows} (job {job.id!r})"
    if name in COLUMNS and not rest:
        row = job.cells.get(name, job.rows[0])
        return f"{label} row {row}, column {name}"
    return f"{label} row {job.rows[0]} (job {job.id!r})"


def add_jobs(instance: Instance, jobs: list[CsvJob], label: str = "jobs.csv",
             source: str | None = None, instance_label: str = "instance",
             prior: Iterable[Issue] = ()) -> Instance:
    """The instance with ``jobs`` appended, validated; problems are located in the CSV.

    Every problem is reported at once in one ``InstanceError``: ``prior`` (the CSV's own, from
    parsing), ids the instance already has, and what validating the combined instance finds
    (except at rows already reported). Warnings about the new jobs are issued as
    ``InstanceWarning`` with CSV locations.
    """
    issues = list(prior)
    for job in jobs:
        if job.id in instance.job_by_id:
            k = next(i for i, j in enumerate(instance.jobs) if j.id == job.id)
            issues.append(Issue(f"{label} row {job.rows[0]}, column id",
                                f"job {job.id!r} is already in the {instance_label} "
                                f"(jobs[{k}])"))
    if any(i.location == f"{label} row 1" for i in issues):  # a required column is missing:
        raise InstanceError(issues, source)  # every row would repeat it
    reported = {m.group(0) for i in issues if (m := re.match(rf"{re.escape(label)} row \d+",
                                                             i.location))}
    try:
        combined = _combine(instance, jobs, label, instance_label, source)
    except InstanceError as e:
        issues += [i for i in e.issues if not (
            (m := re.match(rf"{re.escape(label)} rows? \d+", i.location))
            and m.group(0).replace("rows", "row") in reported)]
        combined = None
    if issues or combined is None:
        raise InstanceError(issues, source)
    return combined


def _combine(instance: Instance, jobs: list[CsvJob], label: str, instance_label: str,
             source: str | None) -> Instance:
    """Validate the instance with the jobs appended; issues located in the CSV."""
    data = instance.model_dump(mode="json", by_alias=True, exclude_none=True)
    first_new = len(data.get("jobs", []))
    data["jobs"] = [*data.get("jobs", []), *(job.mapping() for job in jobs)]

    def where(loc: str) -> str:
        return _csv_location(loc, first_new, jobs, label, instance_label)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InstanceWarning)
            combined = instance_from_mapping(data)
    except InstanceError as e:
        raise InstanceError([Issue(where(i.location), i.message, i.severity)
                             for i in e.issues], source) from None
    try:
        found = [i for i in semantic_issues(data) if i.severity == "warning"]
    except Exception:  # warnings are advice; the instance is valid
        found = []
    for issue in found:
        located = where(issue.location)
        if located.startswith(label):  # the instance's own warnings were shown when loaded
            warnings.warn(f"{source + ': ' if source else ''}{located}: {issue.message}",
                          InstanceWarning, stacklevel=2)
    return combined


def import_jobs(instance: Instance, path: str | Path,
                instance_label: str = "instance") -> Instance:
    """The instance with the jobs of the CSV file at ``path`` added (see the module docstring)."""
    path = Path(path)
    jobs, issues = _parse(_read_text(path), path.name)
    return add_jobs(instance, jobs, path.name, str(path), instance_label, prior=issues)


__all__ = ["COLUMNS", "REQUIRED", "CsvJob", "add_jobs", "import_jobs", "parse_jobs_csv",
           "read_jobs_csv"]

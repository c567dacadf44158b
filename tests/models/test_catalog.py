"""The built-in accelerator catalog against shared/data, and instance overrides of it.

The expected export classes are computed here, independently of the package, from the
thresholds in shared/data/README.md applied to shared/data/accelerators.csv.
"""

from __future__ import annotations

import copy
import csv
import warnings
from pathlib import Path
from typing import Any

import pytest

from gpualloc.models import BUILTIN, InstanceWarning, classify, instance_from_mapping

CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "accelerators.csv"
NUMERIC = ("bf16_tflops", "fp8_tflops", "memory_gb", "memory_tbs", "link_gbs", "tpp", "die_mm2")


def csv_rows() -> dict[str, dict[str, Any]]:
    if not CSV.exists():
        pytest.skip(f"{CSV} is not available")
    rows = {}
    with CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            spec: dict[str, Any] = {"name": row["name"], "vendor": row["vendor"],
                                    "origin": row["origin"],
                                    "datacenter": row["datacenter"].strip().lower() == "true"}
            for key in NUMERIC:
                spec[key] = float(row[key]) if row[key].strip() else None
            rows[row["name"]] = spec
    return rows


def readme_oct2023(spec: dict[str, Any]) -> str:
    """The Oct 2023 rule as shared/data/README.md states it, with DESIGN.md's reading: a part
    not designed for datacenters is 3A090.a by its TPP alone (>= 4800); the performance-density
    prongs and 3A090.b apply to datacenter parts only."""
    tpp = spec.get("tpp")
    die = spec.get("die_mm2")
    if tpp is None:
        return "unrestricted"
    pd = tpp / die if die else None
    if tpp >= 4800:
        return "3A090.a"
    if not spec.get("datacenter", True):
        return "unrestricted"
    if tpp >= 1600 and pd is not None and pd >= 5.92:
        return "3A090.a"
    is_b = (2400 <= tpp < 4800 and pd is not None and 1.6 <= pd < 5.92) or (
        tpp >= 1600 and pd is not None and 3.2 <= pd < 5.92)
    return "3A090.b" if is_b else "unrestricted"


def readme_oct2022(spec: dict[str, Any]) -> str:
    tpp, link = spec.get("tpp"), spec.get("link_gbs")
    if tpp is not None and link is not None and tpp >= 4800 and link >= 600:
        return "3A090.a"
    return "unrestricted"


def instance(accelerators: list[dict[str, Any]] | None = None,
             regime: str | None = None) -> Any:
    data: dict[str, Any] = {
        "name": "catalog",
        "horizon": {"periods": 2},
        "clusters": [{"id": "c", "region": "r", "country": "CN", "pools": []}],
        "startups": [{"id": "s"}],
    }
    if accelerators is not None:
        data["accelerators"] = copy.deepcopy(accelerators)
    if regime is not None:
        data["regime"] = regime
    return instance_from_mapping(data)


# -- the built-in figures are the CSV's ---------------------------------------------------------
def test_builtin_names_are_the_csv_rows() -> None:
    assert sorted(BUILTIN) == sorted(csv_rows())


def test_builtin_figures_equal_the_csv() -> None:
    for name, row in csv_rows().items():
        built = BUILTIN[name]
        for key, value in row.items():
            got = built.get(key)
            if key in NUMERIC and value is not None:
                assert got is not None and float(got) == pytest.approx(value, rel=1e-12), \
                    (name, key)
            else:
                assert got == value, (name, key, got, value)


def test_instance_catalog_carries_the_csv_figures() -> None:
    catalog = instance().catalog
    for name, row in csv_rows().items():
        acc = catalog[name]
        for key in NUMERIC:
            got = getattr(acc, key)
            assert (got is None) == (row[key] is None), (name, key)
            if got is not None:
                assert got == pytest.approx(row[key]), (name, key)
        assert acc.datacenter == row["datacenter"]


# -- export classes -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("H800", "3A090.a"), ("A800", "3A090.a"), ("H100", "3A090.a"), ("Ascend910B", "3A090.a"),
    ("A100", "3A090.a"), ("H200", "3A090.a"), ("B200", "3A090.a"), ("MI300X", "3A090.a"),
    ("H20", "unrestricted"), ("L20", "unrestricted"), ("RTX4090D", "unrestricted"),
])
def test_known_classes_under_oct2023(name: str, expected: str) -> None:
    row = csv_rows()[name]
    assert readme_oct2023(row) == expected  # the README's thresholds say so ...
    assert instance().export_class(name) == expected  # ... and so does the package


def test_every_builtin_class_matches_the_readme_thresholds() -> None:
    inst = instance()
    inst22 = instance(regime="oct2022")
    for name, row in csv_rows().items():
        assert classify(BUILTIN[name], "oct2023") == readme_oct2023(row), name
        assert inst.export_class(name) == readme_oct2023(row), name
        assert inst22.export_class(name) == readme_oct2022(row), name


def test_oct2022_depends_on_the_interconnect() -> None:
    inst = instance(regime="oct2022")
    assert inst.export_class("A100") == "3A090.a"  # 600 GB/s
    assert inst.export_class("A800") == "unrestricted"  # the 400 GB/s China variant
    assert inst.export_class("H800") == "unrestricted"
    assert inst.export_class("H20") == "unrestricted"  # TPP below 4800


def test_jan2026_policy() -> None:
    inst = instance(regime="jan2026")
    assert inst.export_class("B200") == "3A090.a"  # DRAM bandwidth >= 6.5 TB/s
    assert inst.export_class("H20") == "3A090.b"  # licensed case by case since April 2025
    assert inst.export_class("H200") == "3A090.b"


@pytest.mark.parametrize("tpp", [1599, 1600, 2399, 2400, 4799, 4800, 6000])
@pytest.mark.parametrize("die", [None, 300, 500, 811, 1000, 1500, 3000])
@pytest.mark.parametrize("datacenter", [True, False])
def test_threshold_grid(tpp: float, die: float | None, datacenter: bool) -> None:
    spec = {"name": "T", "tpp": tpp, "die_mm2": die, "datacenter": datacenter}
    assert classify(spec, "oct2023") == readme_oct2023(spec)


@pytest.mark.parametrize("tpp, die, expected", [
    (5920, 1000, "3A090.a"),  # PD exactly 5.92, TPP >= 1600
    (3200, 1000, "3A090.b"),  # PD exactly 3.2
    (2400, 1500, "3A090.b"),  # TPP exactly 2400, PD 1.6
    (2399.9, 1500, "unrestricted"),
    (4800, 10_000, "3A090.a"),  # TPP alone suffices
])
def test_threshold_boundaries(tpp: float, die: float, expected: str) -> None:
    spec = {"name": "T", "tpp": tpp, "die_mm2": die, "datacenter": True}
    assert readme_oct2023(spec) == expected
    inst = instance([{"name": "T", "tpp": tpp, "die_mm2": die, "datacenter": True}])
    assert inst.export_class("T") == expected


# -- instance entries ---------------------------------------------------------------------------
def test_override_changes_only_the_given_fields() -> None:
    inst = instance([{"name": "H20", "memory_gb": 141, "link_gbs": 450}])
    h20 = inst.catalog["H20"]
    assert h20.memory_gb == 141 and h20.link_gbs == 450
    built = BUILTIN["H20"]
    for key in ("vendor", "origin", "datacenter", "bf16_tflops", "fp8_tflops", "memory_tbs",
                "tpp", "die_mm2"):
        assert getattr(h20, key) == built[key], key
    assert h20.export_class == "unrestricted"
    # other entries are untouched
    assert inst.catalog["H800"].memory_gb == BUILTIN["H800"]["memory_gb"]
    assert instance().catalog["H20"].memory_gb == 96  # and the built-in table is not mutated
    assert BUILTIN["H20"]["memory_gb"] == 96


def test_override_of_figures_recomputes_the_class() -> None:
    inst = instance([{"name": "H20", "tpp": 4800}])
    assert inst.export_class("H20") == "3A090.a"
    assert inst.catalog["H20"].memory_gb == 96


@pytest.mark.parametrize("name, given", [
    ("H100", "unrestricted"), ("H20", "3A090.a"), ("L20", "3A090.b"), ("H800", "3A090.b"),
])
def test_explicit_export_class_wins(name: str, given: str) -> None:
    inst = instance([{"name": name, "export_class": given}])
    assert inst.export_class(name) == given
    assert inst.catalog[name].tpp == BUILTIN[name]["tpp"]
    inst = instance([{"name": name, "export_class": given, "tpp": 100_000}])
    assert inst.export_class(name) == given  # even against the figures


def test_explicit_class_wins_under_every_regime() -> None:
    for regime in ("oct2022", "oct2023", "jan2026"):
        inst = instance([{"name": "H20", "export_class": "3A090.a"}], regime=regime)
        assert inst.export_class("H20") == "3A090.a", regime


@pytest.mark.parametrize("regime, expected", [("oct2023", "3A090.a"), ("jan2026", "3A090.b"),
                                               ("oct2022", "unrestricted")])
def test_non_datacenter_part_is_controlled_by_tpp(regime: str, expected: str) -> None:
    # An RTX 4090-like consumer card (TPP 5,285, 609 mm^2, no NVLink) is 3A090.a under Oct 2023
    # by its TPP alone (why the 4090D, TPP 4,707, exists); under Jan 2026 Oct 2023's controls
    # below TPP 21,000 are licensed case by case (3A090.b); Oct 2022 needed 600 GB/s links.
    rtx = {"name": "RTX4090X", "tpp": 5285, "die_mm2": 609, "datacenter": False,
           "memory_gb": 24, "memory_tbs": 1.008}
    inst = instance([rtx], regime=regime)
    assert inst.export_class("RTX4090X") == expected
    assert instance(regime=regime).export_class("RTX4090D") == "unrestricted"


def test_density_prongs_and_3a090b_are_for_datacenter_parts_only() -> None:
    # PD 6.5 (3A090.a for a datacenter part) and PD 4 (3A090.b): a consumer part is neither.
    for tpp, die, dc_class in ((3250, 500, "3A090.a"), (3000, 750, "3A090.b")):
        spec = {"tpp": tpp, "die_mm2": die}
        inst = instance([{"name": "D", **spec, "datacenter": True},
                         {"name": "C", **spec, "datacenter": False}])
        assert (inst.export_class("D"), inst.export_class("C")) == (dc_class, "unrestricted")


def test_new_accelerator_with_figures_is_classified() -> None:
    inst = instance([{"name": "X1", "tpp": 3000, "die_mm2": 900, "datacenter": True},
                     {"name": "X2", "tpp": 9000}])
    assert inst.export_class("X1") == "3A090.b"  # PD 3.33
    assert inst.export_class("X2") == "3A090.a"


def test_new_accelerator_without_tpp_is_unrestricted_with_a_warning() -> None:
    with pytest.warns(InstanceWarning, match=r"accelerators\[0\]: no export_class and no tpp "
                      r"for 'Mystery': treated as unrestricted"):
        inst = instance([{"name": "Mystery", "memory_gb": 64, "die_mm2": 500}])
    assert inst.export_class("Mystery") == "unrestricted"
    assert inst.catalog["Mystery"].export_class == "unrestricted"


def test_new_accelerator_with_a_class_but_no_tpp_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*the instance has no jobs")
        inst = instance([{"name": "Secret", "export_class": "3A090.a"}])
    assert inst.export_class("Secret") == "3A090.a"
    assert inst.tpp("Secret") == 0.0


def test_unknown_accelerator_lookups_are_unrestricted() -> None:
    inst = instance()
    assert inst.export_class("NoSuchChip") == "unrestricted"
    assert inst.tpp("NoSuchChip") == 0.0

"""Built-in accelerator catalog and export-control classification.

The figures are copied from ``shared/data/accelerators.csv`` (Epoch AI, CC-BY 4.0) so the
package works without ``shared/``. Export regimes are data: each is an ordered table of
classes, each class a list of alternative threshold clauses; the first class with a matching
clause wins, otherwise the accelerator is ``unrestricted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

ExportClass = Literal["3A090.a", "3A090.b", "unrestricted"]
EXPORT_CLASSES: tuple[str, ...] = ("3A090.a", "3A090.b", "unrestricted")

# name, vendor, origin, datacenter, bf16_tflops, fp8_tflops, memory_gb, memory_tbs, link_gbs,
# tpp, die_mm2
_ROWS: tuple[tuple[Any, ...], ...] = (
    ("A100", "NVIDIA", "US", True, 312, None, 80, 2.04, 600, 4992, 826),
    ("A800", "NVIDIA", "US", True, 311.8, None, 80, 2.04, 400, 4989, 826),
    ("H100", "NVIDIA", "US", True, 989.4, 1979, 80, 3.35, 900, 15832, 814),
    ("H800", "NVIDIA", "US", True, 989, 1979, 80, 3.36, 400, 15832, 814),
    ("H20", "NVIDIA", "US", True, 148, 296, 96, 4.0, 900, 2368, 814),
    ("L20", "NVIDIA", "US", True, 119.5, 239, 48, 0.864, None, 1912, 609),
    ("H200", "NVIDIA", "US", True, 989.5, 1979, 141, 4.8, 900, 15832, 814),
    ("B200", "NVIDIA", "US", True, 2250, 4500, 180, 7.7, 1800, 36000, None),
    ("GB200", "NVIDIA", "US", True, 2500, 5000, 186, 8.0, 1800, 40000, None),
    ("RTX4090D", "NVIDIA", "US", False, None, None, 24, 1.008, None, 4707, 609),
    ("MI300X", "AMD", "US", True, 1307.4, 2614.9, 192, 5.3, 896, 20919, 1017),
    ("Ascend910B", "Huawei", "CN", True, 376, None, 64, 1.6, 392, 6016, None),
    ("Ascend910C", "Huawei", "CN", True, 752, None, 128, 3.2, 400, 12032, None),
)
_KEYS = (
    "name", "vendor", "origin", "datacenter", "bf16_tflops", "fp8_tflops", "memory_gb",
    "memory_tbs", "link_gbs", "tpp", "die_mm2",
)
BUILTIN: dict[str, dict[str, Any]] = {row[0]: dict(zip(_KEYS, row, strict=True)) for row in _ROWS}

# A clause matches when every bound it names holds. Bounds: tpp_min/tpp_max, pd_min/pd_max,
# link_min (GB/s), mem_bw_min (TB/s), datacenter (bool), names (explicit list).
# *_min is inclusive, *_max exclusive. A bound on a figure the accelerator lacks never holds.
Clause = Mapping[str, Any]
REGIMES: dict[str, tuple[tuple[str, tuple[Clause, ...]], ...]] = {
    "oct2022": (
        ("3A090.a", ({"tpp_min": 4800, "link_min": 600},)),
    ),
    # Oct 2023: any part with TPP >= 4800 is 3A090.a (the RTX 4090 was controlled, hence the
    # 4090D); the performance-density prongs and 3A090.b apply to datacenter parts only.
    "oct2023": (
        ("3A090.a", (
            {"tpp_min": 4800},
            {"tpp_min": 1600, "pd_min": 5.92, "datacenter": True},
        )),
        ("3A090.b", (
            {"tpp_min": 2400, "tpp_max": 4800, "pd_min": 1.6, "pd_max": 5.92,
             "datacenter": True},
            {"tpp_min": 1600, "pd_min": 3.2, "pd_max": 5.92, "datacenter": True},
        )),
    ),
    # Jan 2026: presumption of denial above TPP 21,000 or 6.5 TB/s DRAM bandwidth; below that,
    # what the Oct 2023 rule controls is licensed case by case (3A090.b), the H20 included.
    "jan2026": (
        ("3A090.a", ({"tpp_min": 21000}, {"mem_bw_min": 6.5})),
        ("3A090.b", (
            {"tpp_min": 4800},
            {"tpp_min": 1600, "pd_min": 3.2, "datacenter": True},
            {"tpp_min": 2400, "pd_min": 1.6, "datacenter": True},
            {"names": ["H20"]},
        )),
    ),
}
DEFAULT_REGIME = "oct2023"


def performance_density(spec: Mapping[str, Any]) -> float | None:
    """TPP per mm^2 of die, or None when either figure is missing."""
    tpp, die = spec.get("tpp"), spec.get("die_mm2")
    if tpp is None or not die:
        return None
    return float(tpp) / float(die)


def _clause_holds(clause: Clause, spec: Mapping[str, Any]) -> bool:
    figures = {
        "tpp": spec.get("tpp"),
        "pd": performance_density(spec),
        "link": spec.get("link_gbs"),
        "mem_bw": spec.get("memory_tbs"),
    }
    for key, bound in clause.items():
        if key == "names":
            if spec.get("name") not in bound:
                return False
            continue
        if key == "datacenter":
            if bool(spec.get("datacenter", True)) != bound:
                return False
            continue
        figure, _, side = key.rpartition("_")
        value = figures[figure]
        if value is None:
            return False
        if (side == "min" and value < bound) or (side == "max" and value >= bound):
            return False
    return True


def classify(spec: Mapping[str, Any], regime: str = DEFAULT_REGIME) -> str:
    """Export class of an accelerator spec under ``regime`` (explicit ``export_class`` wins)."""
    explicit = spec.get("export_class")
    if explicit:
        return str(explicit)
    for export_class, clauses in REGIMES[regime]:
        if any(_clause_holds(c, spec) for c in clauses):
            return export_class
    return "unrestricted"


def can_classify(spec: Mapping[str, Any]) -> bool:
    """Whether the spec has an explicit class or at least a TPP figure to compute one."""
    return bool(spec.get("export_class")) or spec.get("tpp") is not None

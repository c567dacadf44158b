"""The HTML report in a real headless browser (Debian's chromium): both Plotly charts render,
no script error, nothing fetched from the network. Skipped where no browser is installed
(``.ci/run`` installs one)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gpualloc.present.report import build_report
from tests.conftest import solve_checked
from tests.test_plotting import small

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) is "
                                "installed: apt-get install chromium")


def _dump_dom(page: Path, profile: Path) -> str:
    assert BROWSER is not None
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            # any network access fails: the page must need none
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--dump-dom", page.as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_its_interactive_charts_in_chromium(tmp_path: Path) -> None:
    inst = small()
    plan = solve_checked(inst, "cpsat", time_limit=30)
    assert plan.assignments
    page = build_report(inst, plan).save_html(tmp_path / "report.html")
    dom = _dump_dom(page, tmp_path / "profile")
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None, dom[:500]
    assert 'data-plots-rendered="2"' in root.group(0), root.group(0)  # Gantt + utilization
    assert "data-js-errors" not in root.group(0), root.group(0)
    # drawn SVG: a bar (point) per assignment, the start-up filter, a legend entry per
    # start-up with assignments, the heatmap image
    assert dom.count('class="point"') == len(plan.assignments)
    assert 'class="updatemenu-container"' in dom
    owners = {inst.job_by_id[a.job].startup for a in plan.assignments}
    assert dom.count('class="legendtoggle"') == len(owners)
    assert re.search(r"<image[^>]*href=\"data:image/png", dom)
    for a in plan.assignments:
        assert a.job in dom

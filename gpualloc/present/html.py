"""HTML and Markdown building blocks of the report: the style sheet, tables with numeric
columns right-aligned (headers too), lists, escaping."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.5rem;
margin:0}.headline div{background:#f5f6f8;border-radius:6px;padding:.4rem .6rem}
dt{font-size:.75rem;color:#666;text-transform:uppercase;letter-spacing:.03em}
dd{margin:0;font-size:1.05rem;font-weight:600}
.good{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;width:100%}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f6f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}img{max-width:100%;height:auto}
figcaption,.note{font-size:.8rem;color:#666}.foot{color:#888;font-size:.75rem;margin-top:2rem}
""".replace("\n", "")

_NUMERIC = re.compile(r"[-+0-9.,%/ ]+")


def numeric_columns(rows: list[list[str]], first: int = 1) -> set[int]:
    """Columns from ``first`` on whose every non-empty cell is a number (``-`` counts)."""
    width = max((len(r) for r in rows), default=0)
    out = set()
    for k in range(first, width):
        cells = [r[k] for r in rows if k < len(r) and r[k] not in ("", "-")]
        if cells and all(_NUMERIC.fullmatch(c) for c in cells):
            out.add(k)
    return out


def table(head: tuple[str, ...], rows: list[list[str]], numeric_from: int = 1) -> str:
    """A table whose numeric columns (cells and headers) are right-aligned."""
    e = html.escape
    numeric = numeric_columns(rows, numeric_from)
    out = ["<table><thead><tr>",
           *(f'<th class="n">{e(h)}</th>' if k in numeric else f"<th>{e(h)}</th>"
             for k, h in enumerate(head)), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="n">{e(v)}</td>' if k in numeric
                                    else f"<td>{e(v)}</td>" for k, v in enumerate(row))
                   + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def bullets(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table, numeric columns right-aligned."""
    numeric = numeric_columns(rows)
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if k in numeric else "---" for k in range(len(head))) + "|"]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return lines


def status_class(key: str, value: str) -> str:
    if key == "status":  # "feasible (stopped at gap ≤ 5%)" is feasible
        return {"optimal": "good", "feasible": "warn"}.get(value.split(" ")[0], "bad")
    if key == "validator":
        return "good" if value == "valid" else "bad"
    return ""


# Reports a script error into the page itself, so that a headless browser's DOM shows it.
ERROR_PROBE = ("<script>window.__errors=[];window.addEventListener('error',function(e){"
               "window.__errors.push(String(e.message));document.documentElement.setAttribute("
               "'data-js-errors',window.__errors.join(' | '));});</script>")
# After load: how many Plotly charts drew their SVG (data-plots-rendered on <html>).
RENDER_PROBE = ("<script>window.addEventListener('load',function(){setTimeout(function(){"
                "var n=document.querySelectorAll('.js-plotly-plot .main-svg').length?"
                "Array.prototype.filter.call(document.querySelectorAll('.js-plotly-plot'),"
                "function(d){return d.querySelector('.main-svg');}).length:0;"
                "document.documentElement.setAttribute('data-plots-rendered',String(n));},0);"
                "});</script>")

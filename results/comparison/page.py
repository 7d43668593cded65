"""The comparison as one self-contained HTML page (plots embedded), in the search report's style."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from results.report.html import _STYLE, _embedded, _number, cell
from results.report.plots import Plot

# The report's style bolds a leaderboard's first row; here the first row is just the first experiment given.
_NO_WINNER = "tr:first-child td { font-weight: normal; }\n"


def table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    esc = html.escape
    out = ['<div class="scroll"><table><thead><tr>', *(f"<th>{esc(c)}</th>" for c in columns), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{esc(cell(v))}</td>' if _number(v) else f"<td>{esc(cell(v))}</td>"
                                    for v in row) + "</tr>")
    return out + ["</tbody></table></div>"]


def to_html(title: str, notes: list[str], tables: list[tuple[str, list[str], list[list[Any]], str]],
            plots: list[Plot], folder: Path) -> str:
    """``tables``: (heading, columns, rows, note); every plot's PNG in ``folder`` is embedded."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(title)}</title><style>{_STYLE}{_NO_WINNER}</style></head><body>", f"<h1>{esc(title)}</h1>",
           '<ul class="facts">', *(f"<li>{esc(note)}</li>" for note in notes), "</ul>"]
    for heading, columns, rows, note in tables:
        out += [f"<h2>{esc(heading)}</h2>", *table(columns, rows), f'<p class="note">{esc(note)}</p>']
    for plot in plots:
        out += [f"<h2>{esc(plot.title)}</h2>",
                f'<figure><img src="{_embedded(folder, plot.file)}" alt="{esc(plot.title)}" '
                f'data-file="{esc(plot.file)}">'
                f"<figcaption>{esc(plot.caption)}</figcaption></figure>"]
    out.append("</body></html>")
    return "\n".join(out) + "\n"

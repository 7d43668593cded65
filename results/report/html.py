"""The report as text: the terminal leaderboard, report.md (plots beside it) and one self-contained
report.html (plots embedded as base64 PNG data URIs, no external files, scripts or fonts)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results.report.plots import Figure, Plot, Skipped


@dataclass
class Report:
    title: str
    facts: list[tuple[str, str]]
    """(label, value) lines of the summary at the top."""
    columns: list[str]
    rows: list[list[Any]]
    """The leaderboard (results/report_data.py leaderboard)."""
    figures: list[Figure]
    commands: list[tuple[str, str]] = field(default_factory=list)
    """(what it does, shell command) for the next steps."""
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    """(title, columns, rows) of further tables, after the leaderboard (a multi-objective search's front)."""


def cell(value: Any) -> str:
    """A leaderboard value as text: 4 significant digits for floats, '-' for a parameter a trial lacks."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def terminal_table(columns: list[str], rows: list[list[Any]]) -> str:
    text = [[str(c) for c in columns]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(line[i]) for line in text) for i in range(len(columns))]
    lines = ["  ".join(value.rjust(w) if i != 1 else value.ljust(w) for i, (value, w) in enumerate(zip(line, widths)))
             for line in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(report: Report) -> str:
    out = [f"# {report.title}", ""]
    out += [f"- **{label}**: {value}" for label, value in report.facts]
    out += ["", f"## Leaderboard (top {len(report.rows)})", "",
            "| " + " | ".join(_md_escape(c) for c in report.columns) + " |",
            "|" + "|".join("---:" if i != 1 else "---" for i in range(len(report.columns))) + "|"]
    out += ["| " + " | ".join(_md_escape(cell(v)) for v in row) + " |" for row in report.rows]
    for title, columns, rows in report.tables:
        out += ["", f"## {title}", "", "| " + " | ".join(_md_escape(c) for c in columns) + " |",
                "|" + "|".join("---" for _ in columns) + "|"]
        out += ["| " + " | ".join(_md_escape(cell(v)) for v in row) + " |" for row in rows]
    for figure in report.figures:
        out += ["", f"## {figure.title}", ""]
        if isinstance(figure, Plot):
            out += [f"![{figure.title}]({figure.file})", "", figure.caption]
        else:
            out += [f"_Not drawn: {figure.reason}._"]
    if report.commands:
        out += ["", "## Next steps", ""]
        for what, command in report.commands:
            out += [f"{what}:", "", "```bash", command, "```", ""]
    return "\n".join(out).rstrip() + "\n"


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { padding: 3px 8px; border: 1px solid #ddd; white-space: nowrap; }
.scroll { overflow-x: auto; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:first-child td { font-weight: 600; }
figure { margin: 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; margin-top: 0.4em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; } ul.facts { line-height: 1.6; }
"""


def _embedded(folder: Path, file: str) -> str:
    data = base64.b64encode((folder / file).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def to_html(report: Report, folder: Path) -> str:
    """The report as one HTML page; every plot in ``folder`` is embedded, none is linked."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(report.title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{esc(report.title)}</h1>", '<ul class="facts">']
    out += [f"<li><b>{esc(label)}</b>: {esc(value)}</li>" for label, value in report.facts]
    out.append("</ul>")
    for title, columns, rows in [(f"Leaderboard (top {len(report.rows)})", report.columns, report.rows),
                                 *report.tables]:
        out += [f"<h2>{esc(title)}</h2>", '<div class="scroll"><table><thead><tr>']
        out += [f"<th>{esc(c)}</th>" for c in columns]
        out += ["</tr></thead><tbody>"]
        for row in rows:
            cells = "".join(f'<td class="num">{esc(cell(v))}</td>' if _number(v) else f"<td>{esc(cell(v))}</td>"
                            for v in row)
            out.append(f"<tr>{cells}</tr>")
        out.append("</tbody></table></div>")
    for figure in report.figures:
        out.append(f"<h2>{esc(figure.title)}</h2>")
        if isinstance(figure, Plot):
            out.append(f'<figure><img src="{_embedded(folder, figure.file)}" alt="{esc(figure.title)}" '
                       f'data-file="{esc(figure.file)}"><figcaption>{esc(figure.caption)}</figcaption></figure>')
        elif isinstance(figure, Skipped):
            out.append(f'<p class="note">Not drawn: {esc(figure.reason)}.</p>')
    if report.commands:
        out.append("<h2>Next steps</h2>")
        for what, command in report.commands:
            out.append(f"<p>{esc(what)}:</p><pre>{esc(command)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

"""The confirmation stage in the report (summary.json ``confirmation``): each finalist's search score against its
confirmed mean ± 95 % interval over the seeds (the winner's curse made visible), and a table of the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from results.report.data import SearchResults
from results.report.figures import pyplot, save
from results.report.plots import Figure, Plot, Skipped


def has_confirmation(exp: SearchResults) -> bool:
    return exp.summary.confirmation is not None


def confirmation_plot(exp: SearchResults, out: Path) -> Figure:
    confirmation = exp.summary.confirmation
    title = f"Search score against the confirmed {confirmation.metric} ({len(confirmation.seeds)} seeds)"
    finalists = [f for f in confirmation.finalists if f.val is not None]
    if not finalists:
        return Skipped(title, f"no confirmation run has finished ({confirmation.status}; --resume continues it)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.6 * len(finalists)), dpi=100, layout="constrained")
    for row, f in enumerate(finalists):
        y = len(finalists) - 1 - row
        winner = f.trial_id == confirmation.winner
        colour = "crimson" if winner else "tab:blue"
        if f.val.low is not None:
            ax.plot([f.val.low, f.val.high], [y, y], color=colour, lw=3, alpha=0.5, solid_capstyle="butt")
        ax.scatter(f.val.scores, [y] * len(f.val.scores), s=18, color=colour, alpha=0.6, zorder=2)
        ax.scatter([f.val.mean], [y], s=70, marker="D", color=colour, zorder=3,
                   label="confirmed mean ± 95 % interval (dots: seeds)" if row == 0 else None)
        ax.scatter([f.search_score], [y], s=90, marker="*", color="black", zorder=3,
                   label="the search's score" if row == 0 else None)
        ax.annotate("", xy=(f.val.mean, y), xytext=(f.search_score, y),
                    arrowprops={"arrowstyle": "->", "color": "gray", "lw": 0.8})
    ax.set_yticks(range(len(finalists)))
    ax.set_yticklabels([f"trial {f.trial_id}" + (" (winner)" if f.trial_id == confirmation.winner else "")
                        for f in reversed(finalists)])
    ax.set_xlabel(f"{confirmation.metric} (last epoch)")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=11)
    save(fig, out / "confirmation.png")
    caption = ("Each finalist's validation score as the search reported it (star) and as re-training from scratch "
               f"with fresh seeds {confirmation.seeds} gives it (dots, their mean and Student-t interval). The arrow "
               f"is the optimism the search's ranking carried. {confirmation.verdict or 'Unfinished: --resume.'}")
    return Plot("confirmation.png", "Confirmation over seeds", caption)


def confirmation_table(exp: SearchResults) -> tuple[str, list[str], list[list[Any]]]:
    """(title, columns, rows): per finalist its search score, seeds' scores, mean, std, interval, test, optimism."""
    c = exp.summary.confirmation
    metric = c.metric
    columns = ["finalist", f"search {metric}", "seeds", f"{metric} per seed", "mean", "std", "95 % low", "95 % high",
               "test mean", "test 95 % half-width", "optimism", "rank"]
    rows = []
    for f in c.finalists:
        val, test = f.val, f.test
        rank = c.ranking.index(f.trial_id) + 1 if f.trial_id in c.ranking else None
        rows.append([f.trial_id, f.search_score, len(val.scores) if val else 0,
                     ", ".join(f"{s:.4f}" for s in val.scores) if val else "",
                     val.mean if val else None, val.std if val else None, val.low if val else None,
                     val.high if val else None, test.mean if test else None,
                     (test.high - test.mean) if test and test.high is not None else None, f.optimism, rank])
    return f"Confirmation ({c.status}): {c.verdict or 'unfinished'}", columns, rows

"""The comparison's two plots: best metric so far against epochs trained, and against elapsed time (one line per
experiment, matplotlib like the search report)."""

from __future__ import annotations

from pathlib import Path

from results.comparison.facts import Entry
from results.report.figures import pyplot, save
from results.report.plots import Plot

COLOURS = ["crimson", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:gray", "tab:olive"]


def best_so_far(entries: list[Entry], out: Path, axis: str) -> Plot:
    """``axis``: "epochs" (trial-epochs trained, all trials together) or "seconds" (since the first trial started)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100, layout="constrained")
    metric = entries[0].exp.metric
    for entry, colour in zip(entries, COLOURS * len(entries)):
        xs = entry.epochs if axis == "epochs" else entry.seconds
        ax.step(xs, entry.best, where="post", color=colour, lw=2, label=entry.label)
        ax.plot(xs[-1:], entry.best[-1:], "o", color=colour)  # where the search ended
    ax.set_ylabel(f"best {metric} so far")
    if axis == "epochs":
        ax.set_xlabel("epochs trained, all trials together (in the order they finished)")
        file, title = "best_vs_epochs.png", f"Best {metric} against epochs trained"
        caption = (f"Best {metric} found after each trial-epoch, per search; a dot marks where each search ended. "
                   "Epochs are the search's cost independent of the machine.")
    else:
        ax.set_xlabel("seconds since the search's first trial started")
        file, title = "best_vs_time.png", f"Best {metric} against wall time"
        caption = (f"Best {metric} found against the time each epoch finished. For a resumed search the pause between "
                   "its sessions is on this axis too (the table's wall time leaves it out).")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=11)
    save(fig, out / file)
    return Plot(file, title, caption)

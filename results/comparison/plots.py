"""The comparison's two figures (matplotlib like the search report), a colour per engine (group):

- best_vs_epochs.png: the best metric so far against epochs trained (per engine: its searches' median and min–max
  band, each search a thin line; one search: its line), beside the expected best against the number of trials from
  the engine's pooled trials (Dodge et al. 2019, ± one standard deviation);
- best_vs_time.png: the best metric so far against elapsed time, one line per search.
"""

from __future__ import annotations

from pathlib import Path

from results.comparison.facts import Entry
from results.comparison.groups import Group, unfinished
from results.report.figures import pyplot, save
from results.report.plots import Plot

COLOURS = ["crimson", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:gray", "tab:olive"]
STYLES = ["-", "--", ":", "-."]


def _label(entry: Entry) -> str:
    return entry.label + (" [UNFINISHED]" if unfinished(entry) else "")


def best_so_far(groups: list[Group], out: Path) -> Plot:
    """Left: best so far against epochs trained; right: expected best against trials."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (ax, right) = plt.subplots(1, 2, figsize=(13, 5), dpi=100, layout="constrained", width_ratios=[3, 2])
    metric = groups[0].entries[0].exp.metric
    for group, colour in zip(groups, COLOURS * len(groups)):
        if len(group.entries) == 1:
            entry = group.entries[0]
            ax.step(entry.epochs, entry.best, where="post", color=colour, lw=2, label=f"{_label(entry)}, one seed")
            ax.plot(entry.epochs[-1:], entry.best[-1:], "o", color=colour)  # where the search ended
        else:
            for entry, style in zip(group.entries, STYLES * len(group.entries)):
                ax.step(entry.epochs, entry.best, where="post", color=colour, lw=0.8, ls=style, alpha=0.6,
                        label=_label(entry) if unfinished(entry) else None)
                ax.plot(entry.epochs[-1:], entry.best[-1:], "o", color=colour, ms=3)
            xs, median, low, high = group.band()
            ax.fill_between(xs, low, high, step="post", color=colour, alpha=0.2)
            ax.step(xs, median, where="post", color=colour, lw=2.2,
                    label=f"{group.label}: median of {len(group.entries)} searches (band: min–max)")
        expected = group.expected()
        if not expected:  # no finished trial to draw from (every one cut short by an interrupt)
            continue
        ns = [e.n for e in expected]
        right.plot(ns, [e.mean for e in expected], color=colour, lw=2, label=f"{group.label} ({len(ns)} trials pooled)")
        # ± one standard deviation, clipped to the scores seen: the best of n draws never leaves their range.
        low, high = min(group.scores()), max(group.scores())
        right.fill_between(ns, [max(e.mean - e.std, low) for e in expected],
                           [min(e.mean + e.std, high) for e in expected], color=colour, alpha=0.15)
    ax.set_ylabel(f"best {metric} so far")
    ax.set_xlabel("epochs trained, all trials together (in the order they finished)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"Best {metric} against epochs trained", fontsize=11)
    right.set_xlabel("trials (n)")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_ylabel(f"expected best {metric} of n trials")
    right.legend(loc="best", fontsize=8)
    right.set_title("Expected best against trials (Dodge et al. 2019)", fontsize=11)
    save(fig, out / "best_vs_epochs.png")
    title = f"Best {metric} against epochs trained, and expected best against trials"
    caption = (f"Left: best {metric} found after each trial-epoch; per engine the median of its searches' curves "
               "(thick) with their min–max band, up to where its shortest search ended, each search thin, a dot where "
               "it ended. Epochs are the search's cost independent of the machine. Right: the expected best of n "
               "trials, from each engine's trials pooled over its searches (each trial's last reported score, an "
               "early-stopped trial's included), exact from their empirical distribution (draws with replacement), "
               "± one standard deviation (within the scores seen). Trials of an adaptive engine are not independent "
               "draws: this is what n of its trials delivered, not a sample of n fresh ones; with early stopping a "
               "trial costs fewer epochs.")
    return Plot("best_vs_epochs.png", title, caption)


def best_vs_time(groups: list[Group], out: Path) -> Plot:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100, layout="constrained")
    metric = groups[0].entries[0].exp.metric
    for group, colour in zip(groups, COLOURS * len(groups)):
        for entry, style in zip(group.entries, STYLES * len(group.entries)):
            ax.step(entry.seconds, entry.best, where="post", color=colour, lw=2 if len(group.entries) == 1 else 1.2,
                    ls=style, label=_label(entry))
            ax.plot(entry.seconds[-1:], entry.best[-1:], "o", color=colour)
    ax.set_ylabel(f"best {metric} so far")
    ax.set_xlabel("seconds since the search's first trial started")
    ax.legend(loc="best", fontsize=8)
    title = f"Best {metric} against wall time"
    ax.set_title(title, fontsize=11)
    save(fig, out / "best_vs_time.png")
    caption = (f"Best {metric} found against the time each epoch finished, one line per search (a colour per engine). "
               "For a resumed search the pause between its sessions is on this axis too (the table's wall time leaves "
               "it out).")
    return Plot("best_vs_time.png", title, caption)

"""Writing the report of an experiment: its facts, the commands to go on with, the figures, report.md and
report.html (and the W&B report run); :func:`build` is all of results/analyze.py but its arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from tune.experiment.layout import BEST_CONFIG_FILE, SEARCH_FILE


def facts(exp, evaluation, study_source: str) -> list[tuple[str, str]]:
    summary, budget = exp.summary, exp.budget
    outcomes = [t.outcome(exp.epochs) for t in exp.trials]
    stopped = sum(o.startswith("stopped at") for o in outcomes)
    best = exp.best
    facts = [("experiment", exp.location),
             ("search", f"{exp.describe()}; {len(exp.trials)} trials: {outcomes.count('complete')} ran to "
                        f"{exp.epochs} epochs, {stopped} stopped by {exp.stopper}, {outcomes.count('error')} failed"
                        + (f"; {exp.stopper} grace {budget.grace_period}, reduction factor {budget.reduction_factor}"
                           if budget.early_stopping else "")),
             ("epochs trained", f"{sum(len(t.curve) for t in exp.trials)} of {len(exp.trials) * exp.epochs} "
                                f"(every trial to trial.epochs); wall time {summary.wall_s:.0f} s"),
             (f"best trial ({exp.metric}, {exp.mode})",
              f"{best.trial_id}: {best.value:.4f} after {best.epochs} epochs; "
              + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()))]
    if evaluation is not None:
        facts.append(("best trial on the test split", f"accuracy {evaluation['accuracy']:.4f} on "
                                                      f"{evaluation['images']} images"))
    if summary.confirmation is not None:
        facts.append(("confirmation", summary.confirmation.verdict or f"unfinished: continue with python "
                      f"tune/run_search.py --config {exp.child(SEARCH_FILE)} --resume {exp.location}"))
    if summary.interrupted:
        facts.append(("interrupted", f"yes: continue with python tune/run_search.py --config "
                                     f"{exp.child(SEARCH_FILE)} --resume {exp.location}"))
    if summary.objectives:
        facts.append(("objectives", ", ".join(f"{o.metric} ({o.mode})" for o in summary.objectives)
                      + f"; Pareto front: {len(summary.front or [])} trials ({', '.join(summary.front or [])})"))
    facts += [("Optuna study", study_source), ("data fingerprint", summary.data_fingerprint)]
    return facts


def commands(exp, study_source: str) -> list[tuple[str, str]]:
    commands = []
    if study_source.endswith(".db"):
        commands.append(("Browse the study live in optuna-dashboard", f"optuna-dashboard sqlite:///{study_source}"))
    commands += [("Evaluate the best checkpoint on the test split", f"python results/evaluate.py {exp.location}"),
                 ("Re-train the best configuration",
                  f"python train/train_model.py --config {exp.child(BEST_CONFIG_FILE)}"),
                 ("Export the best model (ONNX, TorchScript, model.json)",
                  f"python results/export.py {exp.location} --out models/{exp.name}")]
    return commands


def build(args: argparse.Namespace, scratch: Path) -> tuple[str, list[str]]:
    """Write the report; return (report.html's path or URI, lines to print before it)."""
    from infra.files import write_atomic
    from results.report import confirmation as report_confirmation
    from results.report import pareto as report_pareto
    from results.report import plots as report_plots
    from results.report import to_wandb as report_wandb
    from results.report.data import leaderboard, load
    from results.report.evaluation import best_test_evaluation
    from results.report.html import Report, terminal_table, to_html, to_markdown
    from results.report.study import load_study, with_pruned_as_complete
    from tune.experiment import storage
    from tune.experiment.layout import REPORT_DIR
    from tune.experiment.records import ExperimentError

    exp = load(args.experiment)
    baselines = [load(location) for location in args.baseline]
    for other in baselines:
        if other.metric != exp.metric:
            raise ExperimentError(f"--baseline {other.location}: it searched for {other.metric}, not {exp.metric}")
    evaluation, evaluation_source = best_test_evaluation(exp, not args.no_evaluate, scratch)
    study, study_source = load_study(exp, scratch)
    view = with_pruned_as_complete(study, exp.metric, {t.trial_id: t.value for t in exp.trials if t.value is not None})

    remote = args.out is None and storage.is_uri(exp.location)
    out = scratch / REPORT_DIR if remote else Path(args.out) if args.out else Path(exp.location) / REPORT_DIR
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    figures = [report_plots.learning_curves(exp, out), report_plots.efficiency(exp, baselines, out),
               report_plots.importance(view, exp, out), report_plots.parallel(view, exp, out),
               report_plots.numeric(exp, out), report_plots.choices(exp, out),
               report_plots.confusion(evaluation, exp, out, evaluation_source)]
    columns, rows = leaderboard(exp, args.top)
    tables = []
    if report_pareto.is_pareto(exp):
        figures.insert(0, report_pareto.front_plot(exp, out))
        tables.append(report_pareto.front_table(exp))
    if report_confirmation.has_confirmation(exp):  # first: the numbers that decide what ships
        figures.insert(0, report_confirmation.confirmation_plot(exp, out))
        tables.insert(0, report_confirmation.confirmation_table(exp))
    report = Report(f"Search report: {exp.name}", facts(exp, evaluation, study_source), columns, rows, figures,
                    commands(exp, study_source), tables)
    write_atomic(out / "report.md", to_markdown(report))
    write_atomic(out / "report.html", to_html(report, out))
    html_path = str(out / "report.html")
    if remote:
        for path in sorted(out.iterdir()):
            storage.write_bytes(exp.child(REPORT_DIR, path.name), path.read_bytes())
        html_path = exp.child(REPORT_DIR, "report.html")
    lines = [f"{exp.name}: top {len(rows)} of {len(exp.trials)} trials by {exp.metric} ({exp.mode})",
             terminal_table(columns, rows)]
    lines += [f"not drawn: {f.title}: {f.reason}" for f in figures if isinstance(f, report_plots.Skipped)]
    if report_wandb.enabled(exp) and not args.no_wandb:
        lines.append(report_wandb.log_report(exp, columns, rows, figures, out, evaluation))
    lines.append(str(out / "report.md") if not remote else exp.child(REPORT_DIR, "report.md"))
    return html_path, lines

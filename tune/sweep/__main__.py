"""W&B Sweeps for a search file (run from the repository root):

    python -m tune.sweep export SPACE.yaml [--set KEY=VALUE ...] [--method bayes|random|grid] [--objective METRIC]
                                           [--out sweep.yaml]
    python -m tune.sweep agent-trial --space SPACE.yaml [--set KEY=VALUE ...] ARGS.json | --key=value ...

export prints (or writes, atomically) a sweep config ``wandb sweep`` takes; agent-trial is what its ``command``
runs on a W&B agent: one trial of the space with the agent's values. A bad space, method or argument (an --out
that is a folder, or in a folder that does not exist) is one line on stderr and exit 2, with nothing written.
A grid with more points than budget.num_samples (the sweep's run_cap) is exported as asked, with a warning line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (the sweep's ${program}): the repository root is the import root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m tune.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="print a search file's space as a W&B sweep config")
    export.add_argument("space", help="search-space YAML (search_spaces/*.yaml)")
    export.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    export.add_argument("--method", default="bayes", help="bayes (default), random or grid (finite spaces only)")
    export.add_argument("--out", help="write the config here (atomically) instead of printing it")
    export.add_argument("--objective", metavar="METRIC",
                        help="the metric the sweep optimises, for a space with several objectives (a sweep has one)")
    agent = sub.add_parser("agent-trial", help="one trial with a W&B agent's values (the exported command)")
    agent.add_argument("--space", required=True)
    agent.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    # W&B's ${args} are --key=value flags this parser does not know: they come back as the unknown arguments.
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    from train.config import ConfigError
    from train.data import DataError

    try:
        if args.command == "export":
            if rest:
                raise ConfigError(f"export: unknown argument(s) {' '.join(rest)}")
            if args.out:
                check_out(Path(args.out))
            text, notes = export_text(args.space, args.overrides, args.method, args.objective)
            for note in notes:
                print(f"warning: {note}", file=sys.stderr)
            if args.out:
                from infra.files import write_atomic

                try:
                    write_atomic(Path(args.out), text)
                except OSError as error:  # e.g. no permission to write in the folder
                    raise ConfigError(f"--out {args.out}: cannot be written ({error.strerror or error})") from None
                print(args.out)
            else:
                sys.stdout.write(text)
            return 0
        from tune.sweep.agent import main as agent_main

        # A --set given after the space's overrides belongs to them; the rest are the agent's.
        return agent_main(args.space, args.overrides, rest)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def check_out(out: Path) -> None:
    """ConfigError (one line) for an --out that cannot be a file: a folder, or a file in a folder that does not
    exist. The folder is not created: like a shell redirection or ``gcc -o``, a mistyped folder is reported
    rather than made."""
    from train.config import ConfigError

    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give the file to write (e.g. {out / 'sweep.yaml'})")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist (create it first)")


def export_text(space_file: str, overrides: list[str], method: str,
                objective: str | None = None) -> tuple[str, list[str]]:
    """(the sweep config as YAML, warnings for the user: e.g. a grid cut short by run_cap)."""
    import yaml

    from tune.engines.wandb_config import export_notes, one_objective, sweep_config
    from tune.space import load_search_file

    # Paths stay as written (relative to the repository root, where W&B's agent runs), not made absolute.
    search = one_objective(load_search_file(space_file, overrides, base=Path(".")), objective)
    config = sweep_config(search, method, space_file=space_file, overrides=overrides)
    header = f"# W&B sweep of {space_file} (python -m tune.sweep export); create it with: wandb sweep <this file>\n"
    return header + yaml.safe_dump(config, sort_keys=False), export_notes(config)


if __name__ == "__main__":
    sys.exit(main())

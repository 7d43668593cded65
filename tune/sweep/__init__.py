"""W&B Sweeps and this project: a search file as a sweep config (export), the trial a W&B agent runs
(agent-trial). W&B's sweep engine inside Ray Tune is one of the search's engines and schedulers
(tune/engines/wandb_sweep.py, tune/schedulers/wandb_hyperband.py).

    python -m tune.sweep export SPACE.yaml [--set KEY=VALUE ...] [--method bayes|random|grid] > sweep.yaml
    python -m tune.sweep agent-trial --space SPACE.yaml [--set ...] ARGS.json | --key=value ...
"""

"""The report of an experiment (results/analyze.py): writing it (``build``), its data read through the experiment
contract (``data``), Optuna's study or its rebuild (``study``), the best trial's test evaluation (``evaluation``),
the plots (``plots``, ``confusion``, ``figures``), report.html / report.md (``html``) and the W&B report run
(``to_wandb``)."""

"""The confirmation stage: after a search, its finalists trained again from scratch once per seed (finalists.py picks
them, stage.py runs them as Ray Tune trials in ``<experiment>/confirm/``, stats.py turns their scores into means and
intervals, study.py records them in optuna-dashboard). The settings are tune/confirm_settings.py."""

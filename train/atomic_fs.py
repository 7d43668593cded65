"""Alias kept for experiments written before infra/atomic_fs.py moved out of train/ (issue 27).

Why: Tune pickles the run config into ``tuner.pkl`` and ``search_gen_state-*.json``, and its storage filesystem
holds an :class:`AtomicLocalFiles` handler pickled by class path (``train.atomic_fs.AtomicLocalFiles``); without
this name there, ``--resume`` of such a search cannot unpickle its state. A search started after the move pickles
``infra.atomic_fs`` instead. Nothing imports this module.
"""

from infra.atomic_fs import AtomicLocalFiles  # noqa: F401

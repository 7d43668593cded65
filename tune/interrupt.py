"""Ctrl-C or SIGTERM during a search: the first stops it the way Tune does, the second stops at once.

Tune takes SIGINT for itself while ``Tuner.fit`` runs and stops gracefully on the first one (trials
are stopped, the experiment state is saved, results are returned). The search needs to know that it
was interrupted (to mark summary.json and exit 130, not 0) and to say how to continue, so it owns
SIGINT instead (``TUNE_DISABLE_SIGINT_HANDLER``, a documented Tune setting) and triggers the same
graceful stop through the SIGUSR1 handler Tune installs for exactly that (``tune.run``). A second
signal raises KeyboardInterrupt at once; files the search writes itself are written by rename, so
none is left half-written.

SIGTERM is what ``timeout``, systemd, Kubernetes, Slurm and a cluster's job manager send to stop a
job, so it is a stop, not a crash: it is handled exactly like Ctrl-C and the search exits 143
(128 + SIGTERM) instead of 130. ``ray.init`` installs its own SIGTERM handler (a crash dump and exit
134) over whatever was there, so this one must be installed after Ray has started: enter the
context after ``ray.init``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from infra import hold
from infra.signals import NAMES, Stopped, exit_code

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _TuneResumeHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)" warning: the search prints its own resume command
    (the CLI's, which also restores the searcher, ASHA and the budget), and two differing ones confuse."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Resume experiment with" not in record.getMessage()


TUNE_LOGGER = "ray.tune.tune"
"""The logger of ``ray/tune/tune.py``, where that warning is logged."""


class Interrupts:
    """Context manager around ``Tuner.fit``; ``count`` is the number of stop signals seen, ``signum``
    the first of them (None while there was none)."""

    def __init__(self) -> None:
        self.count = 0
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._tune_setting: str | None = None
        self._hint_filter = _TuneResumeHint()

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum or signal.SIGINT)

    def __enter__(self) -> "Interrupts":
        self._tune_setting = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        logging.getLogger(TUNE_LOGGER).addFilter(self._hint_filter)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger(TUNE_LOGGER).removeFilter(self._hint_filter)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        if self._tune_setting is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._tune_setting

    def _own(self) -> None:
        # Tune's graceful stop restores the SIGINT handler it found (this one): keep owning both.
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.signum = self.signum or signum
        self._own()
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if self.count > 1 or not callable(tune_stop):  # again, or before Tune's loop has started
            raise Stopped(self.signum)
        print(f"\n{NAMES[signum]}: stopping the search; trials stop and the search state is saved "
              "(Ctrl-C or SIGTERM again to stop at once)", file=sys.stderr, flush=True)
        tune_stop(signal.SIGUSR1, frame)
        self._own()
        hold.after_interrupt(self.count)  # test-only pause point (infra/hold.py)

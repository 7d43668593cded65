"""Ctrl-C during a search: the first stops it the way Tune does, the second stops at once.

Tune takes SIGINT for itself while ``Tuner.fit`` runs and stops gracefully on the first one (trials
are stopped, the experiment state is saved, results are returned). The search needs to know that it
was interrupted (to mark summary.json and exit 130, not 0) and to say how to continue, so it owns
SIGINT instead (``TUNE_DISABLE_SIGINT_HANDLER``, a documented Tune setting) and triggers the same
graceful stop through the SIGUSR1 handler Tune installs for exactly that (``tune.run``). A second
Ctrl-C raises KeyboardInterrupt at once; files the search writes itself are written by rename, so
none is left half-written.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from train import hold


class Interrupts:
    """Context manager around ``Tuner.fit``; ``count`` is the number of Ctrl-Cs seen."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: Any = None
        self._tune_setting: str | None = None

    def __enter__(self) -> "Interrupts":
        self._tune_setting = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self._previous)
        if self._tune_setting is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._tune_setting

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.count += 1
        # Tune's graceful stop restores the SIGINT handler it found (this one): keep owning it.
        signal.signal(signal.SIGINT, self._on_sigint)
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if self.count > 1 or not callable(tune_stop):  # again, or before Tune's loop has started
            raise KeyboardInterrupt
        print("\nCtrl-C: stopping the search; trials stop and the search state is saved "
              "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
        tune_stop(signal.SIGUSR1, frame)
        signal.signal(signal.SIGINT, self._on_sigint)
        hold.after_interrupt(self.count)  # test-only pause point (train/hold.py)

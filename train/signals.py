"""SIGTERM is a stop, not a crash: what ``timeout``, systemd, Kubernetes, Slurm and a cluster's job manager send to
end a job. The CLIs (``tune/run_search.py``, ``train/train_model.py``) take it like Ctrl-C and exit 143 (128 +
SIGTERM; 130 for Ctrl-C), saying how to continue.

``ray.init`` installs its own SIGTERM handler (a crash dump, exit 134) over whatever was there: call
:func:`terminate_like_ctrl_c` again once Ray has started (the search's own handler, ``tune/interrupt.py``, is
installed after Ray starts too).
"""

from __future__ import annotations

import signal
from typing import Any

NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def exit_code(signum: int) -> int:
    """The shell's convention for a process stopped by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


class Stopped(KeyboardInterrupt):
    """A stop at once, raised where Ctrl-C raises KeyboardInterrupt; ``signum`` says which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signum, str(signum)))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


_received: list[int] = []
"""Signals :func:`terminate_like_ctrl_c`'s handler took, in order: what was raised may reach the CLI as a plain
KeyboardInterrupt (Ray Train's ``fit`` raises its own on the way out)."""


def stopped_code(error: BaseException) -> int:
    """Exit code for a KeyboardInterrupt: 143 for a SIGTERM (:class:`Stopped`, or one the handler took), else
    130 (Ctrl-C)."""
    if isinstance(error, Stopped):
        return error.exit_code
    return exit_code(_received[0] if _received else signal.SIGINT)


def _stop(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Stopped(signum)


def terminate_like_ctrl_c() -> None:
    """From now on SIGTERM raises :class:`Stopped` (a KeyboardInterrupt) the way Ctrl-C does."""
    signal.signal(signal.SIGTERM, _stop)

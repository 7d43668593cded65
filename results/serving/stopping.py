"""SIGINT and SIGTERM stop the server the same way: the first one ends whatever serve.py is doing (starting
up, or waiting while it serves) by raising :class:`Stopped` in the main thread, so its cleanup runs; any later
one is ignored, so a second Ctrl-C cannot cut that cleanup short and leave Ray behind.

``ray.init`` installs its own SIGTERM handler (it exits the interpreter), replacing any set before it, so
:meth:`StopSignals.install` is called again once Ray is up.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A stop signal arrived (BaseException, like KeyboardInterrupt: no ``except Exception`` swallows it)."""


class StopSignals:
    def __init__(self) -> None:
        self.received: Optional[int] = None

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._handle)

    def ignore_further(self) -> None:
        """From now on (the cleanup), signals change nothing."""
        self.received = self.received or -1

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.received is None:
            self.received = signum
            raise Stopped(signal.Signals(signum).name)

"""A CLI's ``main(argv)`` run in this process, for input it refuses before Ray starts (one line, exit 2): a fresh
interpreter pays ~3-5 s of torch and Ray imports per call. A few tests per CLI still run the real process, for
the exit code end to end."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Callable


def run_main(main: Callable[[list[str]], int], argv: list[str], capsys) -> subprocess.CompletedProcess:
    """``main(argv)`` as its process would end: the exit code (argparse's SystemExit included), stdout, stderr.
    What a CLI changes for its own process (signal handlers, os.environ) is put back afterwards."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    environ = dict(os.environ)
    capsys.readouterr()  # only this call's output
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)

"""SIGTERM is a stop, not a crash: what ``timeout``, systemd, Kubernetes, Slurm and a cluster's job manager send to
end a job. The CLIs (``tune/run_search.py``, ``train/train_model.py``) take it like Ctrl-C and exit 143 (128 +
SIGTERM; 130 for Ctrl-C), saying how to continue.

``ray.init`` installs its own SIGTERM handler (``sys.exit(SIGTERM)``) over whatever was there; infra/connect.py
puts the previous one back once Ray is up (the search's own handler, ``tune/interrupt.py``, is installed after Ray
starts too). While Ray is joined or started no handler can unwind the process safely: :func:`bounded` and
:func:`stop_at_once` end it at once instead, with one line, exit 130/143.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

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


@contextmanager
def bounded(what: str, deadline_s: float, too_long: str, on_abort: Callable[[], None] = lambda: None,
            stop_exit: Optional[int] = None) -> Iterator[None]:
    """Around a call in the main thread that may block in C for minutes (``ray.init`` joining a GCS that does not
    answer retries in Ray's C++ client, where no Python signal handler runs): a SIGINT or SIGTERM ends the
    process within ~0.2 s ("<signal> while <what>: stopped", exit 130/143, or ``stop_exit``), and so does
    ``deadline_s`` passing (``too_long``, exit 2). ``on_abort`` runs first (remove what is half made).

    A watchdog thread takes the signal either way it can arrive: the main thread blocks both, so one sent to
    the process stays pending for the watchdog's ``sigtimedwait`` (Ray's threads, started inside, inherit the
    mask); a thread that existed before (a library's, with its own mask) may take it instead, and then
    Python's C-level handler writes its number to the wakeup fd, which the watchdog reads too. The main thread
    may run the Python handler later, but the watchdog decides: leaving the block waits for its last look.
    Only for calls that start no process (a child would inherit the mask and ignore SIGTERM). Outside the main
    thread the call runs unguarded.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = {signal.SIGINT, signal.SIGTERM}
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    previous_fd = signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    done = threading.Event()

    def taken(wait_s: float) -> Optional[int]:
        info = signal.sigtimedwait(watched, wait_s)
        if info is not None:
            return info.si_signo
        try:
            return next((signum for signum in os.read(wakeup_read, 512) if signum in watched), None)
        except BlockingIOError:
            return None

    def watch() -> None:
        deadline = time.monotonic() + deadline_s
        while True:
            last = done.is_set()  # the call returned: one last look, without waiting
            signum = taken(0 if last else 0.2)
            if signum is not None:
                _abort(f"{NAMES[signum]} while {what}: stopped", on_abort,
                       exit_code(signum) if stop_exit is None else stop_exit)
            if last:
                return
            if time.monotonic() > deadline:
                _abort(f"error: {too_long}", on_abort, 2)

    watchdog = threading.Thread(target=watch, name="signsearch-connect-watchdog", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        watchdog.join()
        signal.set_wakeup_fd(previous_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(wakeup_read)
        os.close(wakeup_write)


@contextmanager
def stop_at_once(what: str, on_abort: Callable[[], None] = lambda: None,
                 stop_exit: Optional[int] = None) -> Iterator[None]:
    """Around a start-up that runs Python in the main thread but cannot be unwound halfway (``ray.init`` starting
    a Ray here): a SIGINT or SIGTERM ends the process at once as in :func:`bounded`. ``ray.init`` replaces the
    SIGTERM handler with its own (``sys.exit(SIGTERM)``) as it begins; that exit is taken the same way. The
    processes Ray started die with this one (Ray starts them with the kernel's parent-death signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        _abort(f"{NAMES[signum]} while {what}: stopped", on_abort,
               exit_code(signum) if stop_exit is None else stop_exit)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except SystemExit as exit_:
        if exit_.code == signal.SIGTERM and signal.getsignal(signal.SIGTERM) is not stop:  # ray.init's handler
            stop(signal.SIGTERM, None)
        raise
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def _abort(line: str, on_abort: Callable[[], None], code: int) -> None:
    """One line, the caller's cleanup, and exit at once: the main thread is stuck in C, or halfway through
    starting Ray, and cannot unwind."""
    try:
        print(line, file=sys.stderr, flush=True)
        on_abort()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

"""Ctrl-C, a second Ctrl-C and SIGTERM, unit by unit: the search's handler (tune/interrupt.py), the stop
exceptions and exit codes (infra/signals.py) and the lines the search ends with (tune/search.py), with real
signals sent to this process. One end-to-end search per signal is in tests/tune/test_resume.py (SIGINT, a second
SIGINT, SIGTERM): these cover every combination without a Ray each."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from infra.signals import Stopped, exit_code, stopped_code, terminate_like_ctrl_c
from tune.interrupt import TUNE_LOGGER, Interrupts


@pytest.fixture
def handlers():
    """Put back the handlers a test replaces (this process is pytest's), and what infra/signals.py noted."""
    from infra import signals

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    received = list(signals._received)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    signals._received[:] = received


class TuneStop:
    """A stand-in for the SIGUSR1 handler Tune installs while ``Tuner.fit`` runs (its graceful stop): records each
    call and, as Tune's does, puts back the SIGINT handler it found (SIG_DFL here)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, signum, frame) -> None:
        self.calls += 1
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _send(signum: int) -> None:
    """A real signal to this process; Python runs its handler in the main thread before the next line."""
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum, name, code", [(signal.SIGINT, "Ctrl-C", 130), (signal.SIGTERM, "SIGTERM", 143)])
def test_the_first_signal_stops_the_search_the_way_tune_does(handlers, capsys, monkeypatch, signum, name, code):
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    tune_stop = TuneStop()
    with Interrupts() as interrupts:
        # The search owns SIGINT, not Tune (a documented Tune setting), and SIGTERM, which ray.init took over.
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"
        signal.signal(signal.SIGUSR1, tune_stop)  # Tune's loop has started
        _send(signum)
        assert (interrupts.count, interrupts.signum, interrupts.exit_code) == (1, signum, code)
        assert tune_stop.calls == 1  # Tune's graceful stop: trials stop, the state is saved
        # Tune put its SIGINT handler back: the search owns both signals again, so the second one is its own.
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == interrupts._on_signal
    assert capsys.readouterr().err == (f"\n{name}: stopping the search; trials stop and the search state is saved "
                                       "(Ctrl-C or SIGTERM again to stop at once)\n")
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    assert signal.getsignal(signal.SIGUSR1) is tune_stop


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM),
                                           (signal.SIGTERM, signal.SIGINT)])
def test_a_second_signal_stops_at_once_with_the_first_ones_code(handlers, first, second):
    tune_stop = TuneStop()
    with Interrupts() as interrupts:
        signal.signal(signal.SIGUSR1, tune_stop)
        _send(first)
        with pytest.raises(Stopped) as stop:
            _send(second)
    assert interrupts.count == 2 and tune_stop.calls == 1
    # The first signal says what the user asked for: exit 143 for a SIGTERM, also if Ctrl-C followed it.
    assert stop.value.signum == first and stop.value.exit_code == stopped_code(stop.value) == exit_code(first)
    assert isinstance(stop.value, KeyboardInterrupt)  # unwinds like Ctrl-C through Tune's and Ray's code


def test_a_signal_before_tunes_loop_stops_at_once(handlers):
    """No graceful stop to ask for yet (Tune's SIGUSR1 handler is not installed): the first signal stops."""
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    with Interrupts() as interrupts:
        with pytest.raises(Stopped) as stop:
            _send(signal.SIGTERM)
    assert interrupts.count == 1 and stop.value.exit_code == 143


def test_the_context_puts_back_what_it_found(handlers, monkeypatch):
    monkeypatch.setenv("TUNE_DISABLE_SIGINT_HANDLER", "0")
    mine = signal.getsignal(signal.SIGINT)
    with Interrupts() as interrupts:
        assert interrupts.exit_code == 130 and interrupts.count == 0 and interrupts.signum is None
    assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "0"
    assert signal.getsignal(signal.SIGINT) is mine


def test_tunes_own_resume_hint_is_dropped_only_inside(handlers, caplog):
    """The search prints its own resume command; Tune's "Resume experiment with: Tuner.restore(...)" would differ."""
    logger = logging.getLogger(TUNE_LOGGER)
    with caplog.at_level(logging.WARNING, logger=TUNE_LOGGER):
        with Interrupts():
            logger.warning("Resume experiment with: Tuner.restore(path)")
            logger.warning("another warning")
        logger.warning("Resume experiment with: outside")
    assert [record.getMessage() for record in caplog.records] == ["another warning",
                                                                  "Resume experiment with: outside"]


def test_sigterm_raises_like_ctrl_c_before_the_search_handles_it(handlers):
    """The CLIs' first line (before Ray): SIGTERM raises a KeyboardInterrupt whose exit code is 143, also when what
    reaches the CLI is a plain KeyboardInterrupt raised on the way out (Ray Train's fit raises its own)."""
    terminate_like_ctrl_c()
    with pytest.raises(Stopped) as stop:
        _send(signal.SIGTERM)
    assert stop.value.exit_code == 143 and str(stop.value) == "SIGTERM"
    assert stopped_code(KeyboardInterrupt()) == 143  # the handler took a SIGTERM: that decides


def test_stopped_codes_and_the_search_interrupted_lines(tmp_path):
    from tune.experiment.storage import Experiment
    from tune.search_outcome import SearchInterrupted

    assert (exit_code(signal.SIGINT), exit_code(signal.SIGTERM)) == (130, 143)
    assert str(Stopped(signal.SIGINT)) == "Ctrl-C" and Stopped(signal.SIGINT).exit_code == 130
    experiment = Experiment.create(str(tmp_path), "smoke-1")
    resume = f"  python tune/run_search.py --config {experiment.child('search.yaml')} --resume {experiment.uri}"
    graceful = SearchInterrupted(experiment, "summary.json", 143)
    assert graceful.code == 143 and graceful.lines() == [
        "interrupted; finished trials are kept, unfinished ones continue from their checkpoints. Continue with:",
        resume]
    assert SearchInterrupted(experiment, None).lines() == [
        "stopped at once; the search state saved last is kept. Continue with:", resume]
    assert SearchInterrupted(None, None).lines() == ["interrupted before the search started: nothing to continue"]

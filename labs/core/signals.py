"""Signals as a person means them: SIGTERM and SIGHUP clean up exactly as Ctrl-C does, and a
cleanup that must finish (stopping a stack) is not cut short by a second Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C, so every `except KeyboardInterrupt`
    and `finally` cleans up the same way; `signum` picks the exit status (128 + signal)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame) -> None:
    raise Terminated(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within: SIGTERM/SIGHUP raise Terminated where the main thread is. Handlers restored after."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def shielded(what: str, announce: bool = False) -> Iterator[None]:
    """Cleanup that must finish: Ctrl-C, SIGTERM and SIGHUP are noted on stderr, not obeyed, until it is done
    (an interrupted teardown would leave processes and a half stack behind)."""
    if not _in_main_thread():
        yield
        return
    signals = (signal.SIGINT, *STOP_SIGNALS)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def note(signum: int, _frame) -> None:
        print(f"rolelab: {signal.Signals(signum).name} ignored: {what}, please wait", file=sys.stderr, flush=True)

    for sig in signals:
        signal.signal(sig, note)
    if announce:
        print(f"rolelab: {what}; a second Ctrl-C is ignored until it is done", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

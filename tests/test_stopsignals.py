"""Stop signals as data (vzdivert.stopsignals), in this process: an inherited SIG_IGN does
not hide a Ctrl-C, a poll wakes at once, and one that arrives while closed is still seen."""

from __future__ import annotations

import os
import select
import signal
import threading

from vzdivert.stopsignals import StopSignals


def test_inherited_ignore_is_overridden_and_the_poll_wakes() -> None:
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job
    try:
        with StopSignals() as stop:
            stop.open()
            assert stop.received() is None
            # a thread started inside blocks the signals: the main thread receives them
            killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
            killer.start()
            readable, _, _ = select.select([stop.fd], [], [], 10)
            killer.join()
            assert readable == [stop.fd]
            assert stop.received() == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # restored
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_signal_while_closed_is_seen_and_goes_nowhere_else() -> None:
    late: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: late.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        with StopSignals() as stop:
            stop.open()
            stop.close()  # deciding
            # to this thread: sent to the process, a thread another test left running (its
            # signals unblocked, which the product rules out by entering StopSignals before
            # any thread starts) could take it after the handlers are restored
            me = threading.get_ident()
            signal.pthread_kill(me, signal.SIGTERM)
            assert stop.received() == signal.SIGTERM  # pending, not handled, still seen
            signal.pthread_kill(me, signal.SIGINT)
        assert late == []  # taken off the queue at the end, not handed to the old handler
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
        assert not {signal.SIGINT, signal.SIGTERM} & signal.sigpending()
    finally:
        signal.signal(signal.SIGTERM, old)

"""Ctrl-C (SIGINT) and SIGTERM as data for a command-line tool that drives the output: a
handler that only records the signal, whatever disposition the process inherited, and a
wake-up fd so a blocking poll returns at once. No KeyboardInterrupt can land half-way
through a request or inside the code that puts the output back to 0."""

from __future__ import annotations

import signal
import socket
from types import TracebackType

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class StopSignals:
    """Use as ``with StopSignals() as stop:`` in the main thread, *before* any helper
    thread exists (ZeroMQ's I/O threads): they inherit a mask that blocks the signals, so
    the main thread is the one that receives them. ``open()`` lets them in (measuring),
    ``close()`` keeps them out again (deciding): from then on one that arrives stays
    pending and ``received()`` still sees it, so none is lost before the decision is
    reported. Python keeps SIGINT ignored when a process starts with it ignored (a job in
    the background of a non-interactive shell): the handler is installed regardless."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __enter__(self) -> StopSignals:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        self._old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, self._record) for s in STOP_SIGNALS}
        return self

    def _record(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum

    @property
    def fd(self) -> int:
        """Readable once a stop signal has arrived: poll it beside the sockets."""
        return self._wake_r.fileno()

    def open(self) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def close(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def received(self) -> int | None:
        """The first stop signal so far (handled, or pending while closed), else None. A
        function call, so the interpreter runs a handler due before this body."""
        if self.signum is None:
            pending = STOP_SIGNALS & signal.sigpending()
            if pending:
                self.signum = min(pending)
        return self.signum

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Restore what was there. A signal still pending arrived after the outcome was
        decided and reported: it is taken off the queue, not handed to the old handler."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        while signal.sigtimedwait(STOP_SIGNALS, 0) is not None:
            pass
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._old_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
        self._wake_r.close()
        self._wake_w.close()

"""Limits on failed authentication, per client address and overall, for the web UI's login
and the ingest's credentials. An attempt is recorded *before* the password is checked, under
one lock, so concurrent guesses cannot slip past the count; clients that authenticated
recently are exempt from the overall cap, so a flood from other addresses cannot lock out
the owner or a Basic-auth API client. Times are passed in (no clock of its own)."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(self, per_client: int = 5, overall: int = 0, window_s: float = 300.0,
                 known_for_s: float = 7 * 86400, max_clients: int = 1000):
        """``overall`` 0: no overall cap. ``known_for_s``: how long a success exempts its
        address from the overall cap."""
        self.per_client, self.overall, self.window_s = per_client, overall, window_s
        self.known_for_s, self.max_clients = known_for_s, max_clients
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()
        self._known: OrderedDict[str, float] = OrderedDict()  # address -> last success
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_s:
            q.popleft()

    def attempt(self, client: str, now: float) -> float:
        """0 and the attempt is counted (as a failure until ``succeeded``), or the seconds
        ``client`` must wait (nothing counted: do not check the password)."""
        with self._lock:
            self._trim(self._all, now)
            q = self._clients.get(client)
            if q is not None:
                self._trim(q, now)
                if len(q) >= self.per_client:
                    return q[0] + self.window_s - now
            if self.overall and len(self._all) >= self.overall and not self._is_known(
                    client, now):
                return self._all[0] + self.window_s - now
            if q is None:
                if len(self._clients) >= self.max_clients:  # bounded under a scan
                    self._clients.popitem(last=False)
                q = self._clients[client] = deque()
            q.append(now)
            self._all.append(now)
            return 0.0

    def succeeded(self, client: str, now: float) -> None:
        """The attempt just counted was right: forget the client's failures, trust it."""
        with self._lock:
            self._clients.pop(client, None)
            if self._all:
                self._all.pop()  # this attempt was not a failure
            self._known.pop(client, None)
            if len(self._known) >= self.max_clients:
                self._known.popitem(last=False)
            self._known[client] = now

    def _is_known(self, client: str, now: float) -> bool:
        seen = self._known.get(client)
        return seen is not None and now - seen < self.known_for_s

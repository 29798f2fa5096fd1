"""The best relay policy without foresight, for the several-loads bench's causal yardstick: a
small Markov decision process over the relays' states, their minimum-time locks and the
weather (clear sky or a cloud of one of a few depths, an appliance on or off), solved by
relative value iteration for the least average loss plus a price per relay switch. The
weather's statistics are the scenario's own (exponential spells with its means), so the
policy is the Bayes-optimal one for an engine that knows the present and how the weather
behaves, but not what comes next. Decisions every EPOCH_S seconds; pure Python."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from statistics import NormalDist

EPOCH_S = 5.0  # decision interval (the minimum times are whole multiples of it)
DEPTHS = 10  # cloud depth buckets, equally likely (depth is uniform per cloud)
TEXTURE_POINTS = 9  # quantiles of a cloud's wandering shade the step cost averages over


@dataclass(frozen=True)
class Weather:
    """States and per-epoch transitions: ``surplus[w]`` samples of the surplus (W, equally
    likely) in state w, ``moves[w]`` = [(w', probability)] including staying."""

    surplus: tuple[tuple[float, ...], ...]
    moves: tuple[tuple[tuple[int, float], ...], ...]
    depths: tuple[float, ...]  # cloud depth of each bucket (index 1.. in the cloud axis)
    kettle: bool  # states come in (cloud index, kettle) pairs: w = 2 * cloud + kettle


def leave(mean_s: float) -> float:
    """Probability an exponential spell of this mean ends within one epoch."""
    return 1.0 - math.exp(-EPOCH_S / mean_s) if mean_s > 0 else 1.0


def weather(sc) -> Weather:
    """The scenario's weather (a vzdivert.plant.Scenario) as a Markov chain: clear or a
    cloud of DEPTHS depth buckets (a spell is a cloud edge plus an exponential time with
    the scenario's mean), times the kettle off or on; household base, fridge on average."""
    base = sc.base_w + sc.fridge_w * sc.fridge_on_s / (sc.fridge_on_s + sc.fridge_off_s)
    if sc.cloud_gap_s:
        lo, hi = sc.cloud_depth
        depths = tuple(lo + (hi - lo) * (j + 0.5) / DEPTHS for j in range(DEPTHS))
        edge = sum(sc.cloud_ramp_s) / 2
        in_c, out_c = leave(sc.cloud_gap_s + edge), leave(sc.cloud_len_s + edge)
        cloud_moves = [[(0, 1 - in_c)] + [(j + 1, in_c / DEPTHS) for j in range(DEPTHS)]]
        cloud_moves += [[(j + 1, 1 - out_c), (0, out_c)] for j in range(DEPTHS)]
    else:
        depths, cloud_moves = (), [[(0, 1.0)]]
    zs = [sc.cloud_texture * NormalDist().inv_cdf((k + 0.5) / TEXTURE_POINTS)
          for k in range(TEXTURE_POINTS)]
    kettles = (0, 1) if sc.kettle_w else (0,)
    if sc.kettle_w:
        k_on, k_off = leave(sc.kettle_gap_s), leave(sum(sc.kettle_len_s) / 2)
        k_moves = [[(0, 1 - k_on), (1, k_on)], [(1, 1 - k_off), (0, k_off)]]
    else:
        k_moves = [[(0, 1.0)]]
    surplus, moves = [], []
    for c, k in product(range(len(cloud_moves)), kettles):
        d = depths[c - 1] if c else 0.0
        shades = [min(1.0, max(0.0, 1 - d + d * z)) for z in zs] if d else [1.0]
        surplus.append(tuple(sc.pv_w * f - base - k * sc.kettle_w for f in shades))
        moves.append(tuple((c2 * len(kettles) + k2, p * q) for c2, p in cloud_moves[c]
                           for k2, q in k_moves[k]))
    return Weather(tuple(surplus), tuple(moves), depths, bool(sc.kettle_w))


def state_of(wx: Weather, shade: float, in_cloud: bool, kettle_on: bool) -> int:
    """The weather state for what is known now: clear once a cloud has begun to leave,
    else the depth bucket nearest the shade the sun has now (partly in while it comes)."""
    c = 0
    if in_cloud and wx.depths:
        c = 1 + min(range(len(wx.depths)), key=lambda j: abs(wx.depths[j] - shade))
    return c * (2 if wx.kettle else 1) + (1 if wx.kettle and kettle_on else 0)


class Policy:
    """Relative value iteration for ``n`` relays (one or two) of ``lock`` epochs minimum
    on and off time each. ``step_cost(surplus, mask)``: loss rate (W) of a relay set.
    The solved values price each action; ``choose`` picks at run time with the true
    present loss for the coming epoch in place of its state's average."""

    def __init__(self, wx: Weather, n: int, lock: int, step_cost, price_wh: float,
                 tol_wh: float = 1e-4, max_iter: int = 5000):
        self.wx, self.n, self.lock, self.price = wx, n, lock, price_wh
        self.states = [(m, locks) for m in range(1 << n)
                       for locks in product(range(lock), repeat=n)]
        index = {s: i for i, s in enumerate(self.states)}
        self.acts: list[list[tuple[int, float, int]]] = []
        for m, locks in self.states:
            acts = []
            for a in range(1 << n):
                flips = m ^ a
                if any(flips >> i & 1 and locks[i] for i in range(n)):
                    continue  # a locked relay cannot switch
                nxt = tuple(lock - 1 if flips >> i & 1 else max(r - 1, 0)
                            for i, r in enumerate(locks))
                acts.append((a, price_wh * flips.bit_count(), index[(a, nxt)]))
            self.acts.append(acts)
        h = EPOCH_S / 3600
        self.cost = [[h * sum(step_cost(s, a) for s in samples) / len(samples)
                      for a in range(1 << n)] for samples in wx.surplus]
        self.values = self._solve(tol_wh, max_iter)

    def _expect(self, v: list[list[float]]) -> list[list[float]]:
        return [[sum(p * v[w2][i] for w2, p in moves) for i in range(len(self.states))]
                if len(moves) > 1 else v[moves[0][0]] for moves in self.wx.moves]

    def _solve(self, tol_wh: float, max_iter: int) -> list[list[float]]:
        v = [[0.0] * len(self.states) for _ in self.wx.surplus]
        self.iterations = 0
        for self.iterations in range(1, max_iter + 1):
            ev = self._expect(v)
            new = [[min(cw[a] + sw + evw[j] for a, sw, j in acts) for acts in self.acts]
                   for cw, evw in zip(self.cost, ev, strict=True)]
            ref = new[0][0]
            diff = [x - y for row_n, row in zip(new, v, strict=True)
                    for x, y in zip(row_n, row, strict=True)]
            v = [[x - ref for x in row] for row in new]
            if max(diff) - min(diff) < tol_wh:
                break
        self.gain_wh = ref  # average loss + switch price per epoch
        self._ev = self._expect(v)
        return v

    def choose(self, w: int, mask: int, locks: tuple[int, ...], loss_w: list[float]
               ) -> tuple[int, tuple[int, ...]]:
        """The relay set for the coming epoch and the locks after it: ``loss_w[a]`` is the
        present loss rate of relay set a (W)."""
        i = self._index(mask, locks)
        h = EPOCH_S / 3600
        a, _, j = min(self.acts[i], key=lambda t: h * loss_w[t[0]] + t[1] + self._ev[w][t[2]])
        return a, self.states[j][1]

    def _index(self, mask: int, locks: tuple[int, ...]) -> int:
        i = mask
        for r in locks:
            i = i * self.lock + r
        return i

"""The best relay schedule with perfect foresight that honours minimum on and off times:
dynamic programming over each relay's state (on or off) and its time in that state (capped
at its minimum time: beyond it the relay is free to switch). For the several-loads bench's
constrained oracle. Pure Python (no numpy on the Pi image): each of the four on/off
quadrants of two relays is a grid of time-in-state, aged by shifting rows and columns, and
the step cost, which depends only on the quadrant, is kept as one offset per quadrant."""

from __future__ import annotations

INF = float("inf")
SWITCH_EPS = 1e-3  # a tie goes to fewer switches
NEVER = 1e12  # the cost of a state that must not be (finite: offsets subtract)


def best_plan(costs: list[list[float]], min_steps: list[tuple[int, int]],
              switch_cost: float = SWITCH_EPS) -> list[int]:
    """``costs[k][mask]``: cost of step k with the relays in ``mask`` on (bit i = relay i;
    one or two relays); ``min_steps[i]`` = (min on, min off) in steps. All relays start
    off and free. Returns the mask of each step, of least total cost plus ``switch_cost``
    per switch (a plan so found is the best of all plans with as few switches or fewer)."""
    n = len(min_steps)
    if n == 1:  # a second relay that may never switch on
        min_steps = [min_steps[0], (2, 2)]
        costs = [[c[0], c[1], NEVER, NEVER] for c in costs]
    elif n != 2:
        raise ValueError("one or two relays")
    # m[i][o]: states of relay i while on (o=1) / off (o=0); index m-1 = free to switch
    m = [(max(2, off), max(2, on)) for on, off in min_steps]
    quads = [(o1, o2) for o1 in (0, 1) for o2 in (0, 1)]
    grid = {q: [[INF] * m[1][q[1]] for _ in range(m[0][q[0]])] for q in quads}
    offset = dict.fromkeys(quads, 0.0)
    grid[(0, 0)][-1][-1] = 0.0
    choices: list[tuple[dict, dict]] = []
    for cost in costs:
        # relay 2 ages or switches (columns), then relay 1 (rows); rows keep relay 1's state
        mid: dict = {}
        pick2: dict = {}
        for o1, o2 in quads:
            other, here = grid[(o1, 1 - o2)], grid[(o1, o2)]
            d = offset[(o1, 1 - o2)] - offset[(o1, o2)] + switch_cost
            rows, picks = [], []
            for r, row in enumerate(here):
                last, prev = row[-1], row[-2]
                rows.append([other[r][-1] + d, *row[:-2], prev if prev < last else last])
                picks.append(prev < last)
            mid[(o1, o2)], pick2[(o1, o2)] = rows, bytes(picks)
        new: dict = {}
        pick1: dict = {}
        for o1, o2 in quads:
            other, here = mid[(1 - o1, o2)], mid[(o1, o2)]
            d = offset[(1 - o1, o2)] - offset[(o1, o2)] + switch_cost
            prev, last = here[-2], here[-1]
            new[(o1, o2)] = [[x + d for x in other[-1]], *here[:-2],
                             [p if p < q else q for p, q in zip(prev, last, strict=True)]]
            pick1[(o1, o2)] = bytes(p < q for p, q in zip(prev, last, strict=True))
        grid = new
        for o1, o2 in quads:
            offset[(o1, o2)] += cost[o1 | o2 << 1]
        choices.append((pick1, pick2))
    # the best end state, then back through the choices
    best = min((v + offset[q], q, r, c) for q in quads for r, row in enumerate(grid[q])
               for c, v in enumerate(row))
    _, (o1, o2), r, c = best
    plan = []
    for pick1, pick2 in reversed(choices):
        plan.append(o1 | o2 << 1)
        if r == 0:  # relay 1 switched in this step: it came from the other state, free
            o1, r = 1 - o1, m[0][1 - o1] - 1
        elif r < m[0][o1] - 1 or pick1[(o1, o2)][c]:
            r -= 1
        if c == 0:
            o2, c = 1 - o2, m[1][1 - o2] - 1
        elif c < m[1][o2] - 1 or pick2[(o1, o2)][r]:
            c -= 1
    plan.reverse()
    if n == 1:
        plan = [p & 1 for p in plan]
    return plan

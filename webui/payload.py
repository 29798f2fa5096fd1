"""What the JSON API says, built from the newest bus messages: the `/api/state` document
(with its badges). Pure functions."""

from __future__ import annotations

from typing import Any

BADGES = ("exporting", "importing", "stale", "saturated", "full_output", "output_off", "manual",
          "error")


def badges(state: dict[str, Any]) -> list[str]:
    """State badges in display order: grid direction, then what is wrong or idle."""
    out = []
    grid_w = state.get("grid_w")
    if grid_w is not None and not state["stale"]:
        if grid_w < 0:
            out.append("exporting")
        elif grid_w > 0:
            out.append("importing")
    if state["stale"]:
        out.append("stale")
    if state.get("saturated"):
        out.append("saturated")
    duty = state.get("duty") or 0.0
    if duty >= 0.999:  # the load takes all it can: any export left is beyond its rating
        out.append("full_output")
    elif duty == 0.0:
        out.append("output_off")
    if state.get("mode") == "manual":
        out.append("manual")
    if state.get("error"):
        out.append("error")
    return out


def state_payload(state: dict[str, Any], health: dict[str, Any], ingest: dict[str, Any],
                  ages_s: dict[str, float | None], silent_after_s: float,
                  start_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `/api/state` document. ``ages_s`` maps stream name to the age of its newest
    message here; a worker silent for ``silent_after_s`` makes the state stale, whatever
    its last message said. ``start_settings`` stand in until the supervisor's health."""
    state_age_s = ages_s.get("state")
    settings = health.get("settings") or start_settings or {}
    out: dict[str, Any] = {k: v for k, v in state.items() if k not in ("t", "v")}
    out.update({
        "ts": state.get("ts"),
        "seq": state.get("seq"),
        "grid_w": state.get("grid_w"),
        "target_w": state.get("target_w", settings.get("target_w")),
        "duty": state.get("duty", 0.0),
        "fraction": state.get("fraction", 0.0),
        "power_w": state.get("power_w", 0.0),
        "energy_wh": state.get("energy_wh"),
        "energy_today_wh": state.get("energy_today_wh"),
        "stale": bool(state.get("stale", True)),
        "stale_reason": state.get("stale_reason", ""),
        "saturated": bool(state.get("saturated", False)),
        "error": state.get("error", ""),
        "reading_age_s": state.get("reading_age_s"),
        "loop": state.get("loop"),
        "state_age_s": _round(state_age_s),
        "processes": health.get("processes", {}),
        "health_age_s": _round(ages_s.get("health")),
        "settings": settings,
        "ingest": {**ingest, "age_s": _round(ages_s.get("ingest_stats"))} if ingest else {},
    })
    out["ingest"].pop("t", None)
    out["ingest"].pop("v", None)
    if state_age_s is None:
        out.update(stale=True, stale_reason="waiting for the control loop", duty=0.0,
                   power_w=0.0)
    elif state_age_s > silent_after_s:
        out.update(stale=True, power_w=0.0,
                   stale_reason=f"no state from the control loop for {state_age_s:.0f} s")
    out["badges"] = badges(out)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

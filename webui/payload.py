"""What the JSON API says, built from the newest bus messages: the `/api/state` document
(with its badges). Pure functions."""

from __future__ import annotations

from typing import Any

BADGES = ("exporting", "importing", "stale", "saturated", "full_output", "output_off", "manual",
          "boost", "pause", "topup", "tank_hold", "error")


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
    if state.get("mode") in ("manual", "boost", "pause", "topup"):
        out.append(state["mode"])
    if state.get("hold_reason"):
        out.append("tank_hold")
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
        "rating_learned_w": state.get("rating_learned_w"),
        "rating_confidence": state.get("rating_confidence"),
        "curve_correction": state.get("curve_correction"),
        "loop": state.get("loop"),
        "loads": list(state.get("loads") or []),
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
    if out["stale"]:  # nothing is known to draw: never show a load running on old data
        out["loads"] = [{**load, "power_w": 0.0} for load in out["loads"]]
    out["badges"] = badges(out)
    return out


def hot_water_fields(out: dict[str, Any], hotwater: dict[str, Any], age_s: float | None,
                     silent_after_s: float) -> dict[str, Any]:
    """Add the hot-water process's view to the state document: `mode` (the worker's, or
    what the hot-water process just told it and it applies at its next reading),
    `mode_until` (epoch seconds or null), `tank_c` and its age, the guarantee's plan. A
    silent process adds nothing: its modes expire in the worker too."""
    fresh = bool(hotwater) and age_s is not None and age_s <= silent_after_s
    mode = "stale" if out["stale"] else out.get("mode") or "auto"
    if fresh and mode != "stale" and mode != "manual":
        mode = hotwater.get("effective_mode", mode)  # the worker applies it at its next reading
    out["mode"] = mode
    out["mode_until"] = hotwater.get("mode_until") if fresh and mode in ("boost", "pause") \
        and hotwater.get("mode") == mode else None
    if fresh:
        out["tank_c"] = hotwater.get("tank_c", out.get("tank_c"))
        out["tank_age_s"] = _round(hotwater.get("tank_age_s"))
        out["tank_error"] = hotwater.get("tank_error", "")
        out["guarantee"] = hotwater.get("guarantee")
    else:
        out.setdefault("tank_c", None)
        out["guarantee"] = None
    out.setdefault("hold_reason", "")
    out["badges"] = badges(out)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

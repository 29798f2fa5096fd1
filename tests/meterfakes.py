"""Protocol-faithful stand-ins for the meters users own, on loopback only: HTTP servers that
answer as Shelly Gen1/Gen2, Tasmota (SML script), HomeWizard P1 and vzlogger's local server
document it, their MQTT payloads, and SMA Energy Meter datagrams built from the spec."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UUID = "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"


def shelly_pro_3em(w: float) -> dict[str, Any]:
    """Gen2 `EM.GetStatus` (also the payload of `<id>/status/em:0` over MQTT)."""
    a, b = round(w * 0.5, 1), round(w * 0.3, 1)
    return {"id": 0, "a_current": 4.029, "a_voltage": 236.1, "a_act_power": a,
            "a_aprt_power": abs(a) + 1, "a_pf": 0.99, "a_freq": 50.0, "b_current": 2.1,
            "b_voltage": 236.2, "b_act_power": b, "b_aprt_power": abs(b) + 1, "b_pf": 0.99,
            "b_freq": 50.0, "c_current": 1.0, "c_voltage": 236.4,
            "c_act_power": round(w - a - b, 1), "c_aprt_power": 100.0, "c_pf": 0.99,
            "c_freq": 50.0, "n_current": None, "total_current": 7.1, "total_act_power": w,
            "total_aprt_power": abs(w) + 3, "user_calibrated_phase": []}


def _emeter(w: float) -> dict[str, Any]:
    return {"power": w, "pf": 0.98, "current": abs(w) / 230, "voltage": 231.4,
            "is_valid": True, "total": 123456.7, "total_returned": 2345.6}


def shelly_3em(w: float) -> dict[str, Any]:
    """Gen1 `/status` of a 3EM: per-phase emeters and `total_power`."""
    phases = [round(w / 3, 2)] * 2 + [round(w - 2 * round(w / 3, 2), 2)]
    return {"wifi_sta": {"connected": True, "ssid": "home", "ip": "127.0.0.1", "rssi": -60},
            "emeters": [_emeter(p) for p in phases], "total_power": w, "fs_mounted": True,
            "relays": [{"ison": False, "has_timer": False}], "uptime": 86400}


def shelly_em(w: float) -> dict[str, Any]:
    """Gen1 `/status` of a Shelly EM: the grid clamp is emeters[0]."""
    return {"wifi_sta": {"connected": True, "ssid": "home"},
            "emeters": [_emeter(w), _emeter(0.0)], "uptime": 86400}


def tasmota_sensor(w: float) -> dict[str, Any]:
    """The SML script's object, as in `tele/<topic>/SENSOR` (meter `SML`, power `Power`)."""
    return {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "SML": {"Total_in": 12345.678, "Total_out": 2345.6, "Power": w}}


def tasmota_status10(w: float) -> dict[str, Any]:
    """`/cm?cmnd=Status%2010`: the same object under StatusSNS."""
    return {"StatusSNS": tasmota_sensor(w)}


def homewizard_p1(w: float) -> dict[str, Any]:
    return {"wifi_ssid": "home", "wifi_strength": 100, "smr_version": 50,
            "meter_model": "ISKRA 2M550T-101", "unique_id": "00112233445566778899AABBCCDDEEFF",
            "active_tariff": 2, "total_power_import_kwh": 13779.338,
            "total_power_export_kwh": 2140.3, "active_power_w": w, "active_power_l1_w": w,
            "active_voltage_l1_v": 230.1, "active_current_l1_a": abs(w) / 230}


def vzlogger_local(w: float, ts_ms: int | None = None) -> dict[str, Any]:
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    return {"version": "0.8.10", "generator": "vzlogger",
            "data": [{"uuid": UUID, "obis": "1-0:16.7.0", "last": ts_ms, "interval": 1,
                      "protocol": "sml", "tuples": [[ts_ms - 1000, w + 7.0], [ts_ms, w]]}]}


# path (with query) -> payload builder, per device
DEVICES = {
    "shelly-pro-3em": ("/rpc/EM.GetStatus?id=0", shelly_pro_3em),
    "shelly-3em": ("/status", shelly_3em),
    "shelly-em": ("/status", shelly_em),
    "tasmota-sml": ("/cm?cmnd=Status%2010", tasmota_status10),
    "homewizard-p1": ("/api/v1/data", homewizard_p1),
    "vzlogger-local": (f"/{UUID}", vzlogger_local),
}


class MeterServer:
    """One device's HTTP API on 127.0.0.1. ``mode``: ok | garbage | slow | error."""

    def __init__(self, device: str, grid_w: float = -800.0):
        self.path, self.payload = DEVICES[device]
        self.grid_w, self.mode, self.slow_s = grid_w, "ok", 2.0
        self.requests = 0
        self.served_ns: list[int] = []  # perf_counter_ns as each good answer is sent
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the devices' own servers

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner.requests += 1
                if self.path != owner.path:
                    return self.answer(404, b'{"code":404,"message":"Not Found"}')
                if owner.mode == "slow":
                    time.sleep(owner.slow_s)
                if owner.mode == "error":
                    return self.answer(500, b'{"code":-105,"message":"Internal error"}')
                if owner.mode == "garbage":
                    return self.answer(200, b"<html>Tasmota web UI</html>")
                body = json.dumps(owner.payload(owner.grid_w)).encode()
                owner.served_ns.append(time.perf_counter_ns())  # just before it leaves
                self.answer(200, body)

            def answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # the poller gave up (timeout) or went away
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- SMA Energy Meter (SMA "EMETER-Protokoll", speedwire) ------------------------------------
def _obis(index: int, kind: int, value: int) -> bytes:
    head = struct.pack(">BBBB", 0, index, kind, 0)
    return head + (struct.pack(">Q", value) if kind == 8 else struct.pack(">I", value))


def sma_datagram(import_w: float, export_w: float, serial: int = 1901234567,
                 susy: int = 0x0174) -> bytes:
    """A spec-built energy-meter datagram: 'SMA\\0', group tag 0x02a0 (group 1), data tag
    0x0010 with protocol 0x6069, SUSy id, serial, ticker, OBIS records (1.4.0/2.4.0 in
    0.1 W, their 1.8.0/2.8.0 counters in Ws, per-phase and reactive records), the software
    version record, then the end tag."""
    records = (_obis(1, 4, round(import_w * 10)) + _obis(1, 8, 49_603_850_000)
               + _obis(2, 4, round(export_w * 10)) + _obis(2, 8, 7_705_500_000)
               + _obis(3, 4, 0) + _obis(3, 8, 10) + _obis(9, 4, round(import_w * 11))
               + _obis(13, 4, 980) + _obis(14, 4, 50_000)
               + _obis(21, 4, round(import_w * 10 / 3)) + _obis(22, 4, round(export_w * 10 / 3))
               + _obis(32, 4, 231_500)
               + struct.pack(">I", 0x90000000) + bytes([2, 0, 18, 82]))
    data = struct.pack(">HHI", 0x6069, susy, serial) \
        + struct.pack(">I", int(time.monotonic() * 1000) & 0xFFFFFFFF) + records
    return (b"SMA\0" + struct.pack(">HHI", 4, 0x02A0, 1)
            + struct.pack(">HH", len(data), 0x0010) + data + struct.pack(">HH", 0, 0))


def send_sma(port: int, datagram: bytes) -> None:
    """To 127.0.0.1 only: tests never send to the multicast group."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(datagram, ("127.0.0.1", port))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

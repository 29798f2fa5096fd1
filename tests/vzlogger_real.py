"""A manual check against a real vzlogger (not collected by pytest: needs a vzlogger binary,
e.g. 0.8.10 built from source with `cmake -DENABLE_SML=OFF -DENABLE_OMS=OFF
-DBUILD_TEST=OFF`). Runs it with its `random` meter for 12 s against the ingest: its default
`volkszaehler` api (middleware), `push`, MQTT (on a private Mosquitto) and its local HTTP
server polled by the `vzlogger-local` preset; prints what arrived and every line of
vzlogger's log that is not a success.  Run: .venv/bin/python tests/vzlogger_real.py PATH"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from syshelp import free_port
from test_mqtt import Broker, Observer
from test_sources_ingest import SourceIngest

UUID = "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"


def main(binary: str) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="vzdivert-vzlogger-"))
    broker = Broker(tmp).start()
    ing = SourceIngest(tmp, f'\n[[ingest.channels]]\nsource = "volkszaehler"\nuuid = "{UUID}"\n'
                            '\n[[ingest.channels]]\nname = "mqtt"\nrole = "battery_w"\n'
                            'source = "mqtt"\ntopic = "vzlogger/chn0/raw"\n'
                            f"\n[mqtt]\nport = {broker.port}\n")
    local_port = free_port()
    conf = {"retry": 3, "verbosity": 10, "log": str(tmp / "vzlogger.log"),
            "local": {"enabled": True, "port": local_port, "index": True, "buffer": -3},
            "push": [{"url": f"http://127.0.0.1:{ing.port}/push"}],
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port,
                     "topic": "vzlogger", "id": "vz"},
            "meters": [{"enabled": True, "protocol": "random", "interval": 1, "min": -1500.0,
                        "max": -500.0, "channels": [{
                            "uuid": UUID, "api": "volkszaehler",
                            "middleware": f"http://127.0.0.1:{ing.port}/middleware.php"}]}]}
    (tmp / "vzlogger.conf").write_text(json.dumps(conf))
    observer = Observer(broker.port, "vzlogger/#")
    vz = subprocess.Popen([binary, "-c", str(tmp / "vzlogger.conf"), "-f"],
                          stdout=open(tmp / "vz.out", "wb"), stderr=subprocess.STDOUT,
                          start_new_session=True)
    local = None
    try:
        time.sleep(6)
        (tmp / "local").mkdir()
        local = SourceIngest(tmp / "local", f'\n[[ingest.channels]]\ndevice = "vzlogger-local"\n'
                                            f'host = "127.0.0.1:{local_port}"\nuuid = "{UUID}"\n'
                                            "interval_s = 0.5\n")
        time.sleep(6)
        print("middleware + push + mqtt ->", json.dumps(ing.stats()["channels"]))
        print("local server (preset)    ->", json.dumps(local.stats()["channels"]))
        print("mqtt topics:", sorted({m.topic for m in observer.messages}))
    finally:
        os.killpg(vz.pid, signal.SIGTERM)
        vz.wait(10)
        observer.close()
        ing.close()
        if local is not None:
            local.close()
        broker.stop()
    log = (tmp / "vzlogger.log").read_text(errors="replace")
    ok = log.count("succeeded with code: 200")
    bad = [line for line in log.splitlines()
           if any(w in line.lower() for w in ("error", "fail", "alert"))]
    print(f"vzlogger: {ok} requests answered 200; {len(bad)} error lines")
    print("\n".join(bad[:20]))
    return 1 if bad or not ok else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))

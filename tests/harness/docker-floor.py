#!/usr/bin/python3
"""The Docker floor of a start chain: what any orchestrator on this Docker would take.

Usage: docker-floor.py LAYER...   (LAYER: container names separated by commas)

The containers must exist (created beforehand, e.g. `docker compose create`). Each layer's
containers are started over the Engine API at once, the moment every container of the
layer before reported `health_status: healthy` on Docker's event stream; no systemd, no
hlsys, no Compose, no docker CLI in between. Prints one JSON object: seconds from the
first start call to the last healthy event, and per layer the seconds from the start to
(first start call, last start call answered, last healthy).

tests/e2e_prepare.rs runs it inside the test machine to split hlsys's start-to-ready into
Docker's share (this) and the rest.
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

SOCK = "/var/run/docker.sock"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=120)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCK)


def start(name, errors):
    c = UnixConnection()
    c.request("POST", f"/containers/{name}/start")
    r = c.getresponse()
    body = r.read()
    if r.status not in (204, 304):
        errors.append(f"{name}: {r.status} {body!r}")


def healthy_events(out, cond):
    """Appends (monotonic time, container name) of every healthy event to `out`."""
    filters = json.dumps({"type": ["container"], "event": ["health_status"]})
    c = UnixConnection()
    c.request("GET", "/events?filters=" + urllib.parse.quote(filters))
    r = c.getresponse()
    with cond:
        out.append((time.monotonic(), None))  # subscribed
        cond.notify_all()
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            ev = json.loads(line)
            if ev.get("status", ev.get("Action", "")).startswith("health_status: healthy"):
                with cond:
                    out.append((time.monotonic(), ev["Actor"]["Attributes"]["name"]))
                    cond.notify_all()


def main():
    layers = [a.split(",") for a in sys.argv[1:]]
    seen, cond = [], threading.Condition()
    threading.Thread(target=healthy_events, args=(seen, cond), daemon=True).start()
    with cond:
        cond.wait_for(lambda: seen, timeout=10)
    t0 = time.monotonic()
    rows = []
    for names in layers:
        errors = []
        threads = [threading.Thread(target=start, args=(n, errors)) for n in names]
        called = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answered = time.monotonic()
        if errors:
            sys.exit("cannot start: " + "; ".join(errors))
        with cond:
            ok = cond.wait_for(lambda: set(names) <= {n for at, n in seen if at >= called}, timeout=120)
            if not ok:
                sys.exit(f"not healthy within 120 s: {names}")
            last = max(at for at, n in seen if n in names and at >= called)
        rows.append([round(called - t0, 3), round(answered - t0, 3), round(last - t0, 3)])
    print(json.dumps({"seconds": rows[-1][2], "layers": rows}))


if __name__ == "__main__":
    main()

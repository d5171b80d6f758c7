#!/usr/bin/python3
"""Supervisor end to end, webhooks (docs/api.md "Webhooks"):

1. the receiver is down when the supervisor starts and when ann's usage is
   reset (POST /v1/users/ann/reset): /metrics counts the failed attempts
   (mtwarden_webhook_failed_attempts_total) and nothing delivered yet;
2. the receiver comes up: the retries deliver every queued event, in order,
   among them ann's usage_reset (detail "api") as the JSON event object;
   /metrics counts them as delivered, none failed or dropped;
3. with the receiver up a new event arrives at once (no backoff left over).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import http.server
import json
import os
import re
import threading
import time

import harness as h
import sandbox as sb
from test_supervisor_api import Api

ANN = "5123456789abcdef0123456789abcdef"


class Receiver:
    """An HTTP server collecting POSTed JSON bodies (answers 204)."""

    def __init__(self, port):
        self.bodies = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.bodies.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self):
        with self.lock:
            return [json.loads(b) for _, _, b in self.bodies]

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(e) for e in self.events()):
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def metric(api, name, labels=""):
    text = api.get("/metrics").body.decode()
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def test():
    env = sb.Setup("hook", pool="10.214.0.0/16", prefix="mtk", nat=False, uid_first=330000)
    port = sb.free_port()
    rx = None
    try:
        env.write_config([{"name": "ann", "secret": ANN}],
                         sections={"api": {"webhooks": ["http://127.0.0.1:%d/hook?src=mtw" % port],
                                           "webhook_timeout_ms": 1000, "webhook_retries": 8}})
        env.start()
        env.require_running(["ann"])
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))

        # 1. Receiver down.
        r = api.post("/v1/users/ann/reset")
        h.check(r.status == 200, "POST /v1/users/ann/reset: 200 (%r)" % r)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (metric(api, "mtwarden_webhook_failed_attempts_total") or 0) >= 2:
            time.sleep(0.2)
        failed_attempts = metric(api, "mtwarden_webhook_failed_attempts_total")
        h.check((failed_attempts or 0) >= 2,
                "receiver down: failed attempts counted in /metrics (%s)" % failed_attempts)
        delivered = metric(api, "mtwarden_webhook_deliveries_total", '{result="delivered"}')
        h.check(delivered == 0, "receiver down: nothing delivered (%s)" % delivered)

        # 2. Receiver up: the retry delivers everything queued.
        rx = Receiver(port)
        got = rx.wait(lambda e: e.get("kind") == "usage_reset", timeout=30)
        evs = rx.events()
        reset = [e for e in evs if e.get("kind") == "usage_reset"]
        h.check(got and reset[0].get("user") == "ann" and reset[0].get("detail") == "api"
                and isinstance(reset[0].get("seq"), int) and isinstance(reset[0].get("at"), int),
                "after the receiver came up: ann's usage_reset delivered (%s)" % reset[:1])
        seqs = [e.get("seq") for e in evs]
        h.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and "started" in [e.get("kind") for e in evs],
                "queued events delivered once each, in order, from 'started' on (%s)"
                % [(e.get("seq"), e.get("kind")) for e in evs])
        with rx.lock:
            paths = {(p, t) for p, t, _ in rx.bodies}
        h.check(paths == {("/hook?src=mtw", "application/json")},
                "POSTed to the URL's path and query as application/json (%s)" % paths)
        events = [(e["user"], e["kind"], e["detail"]) for e in api.get("/v1/events?limit=1000").json["events"]]
        h.check(("ann", "usage_reset", "api") in events, "GET /v1/events has ann's usage_reset")
        n = len(evs)
        delivered = metric(api, "mtwarden_webhook_deliveries_total", '{result="delivered"}')
        failed = metric(api, "mtwarden_webhook_deliveries_total", '{result="failed"}')
        dropped = metric(api, "mtwarden_webhook_deliveries_total", '{result="dropped"}')
        h.check(delivered is not None and delivered >= n and failed == 0 and dropped == 0,
                "/metrics: delivered %s >= %d received, failed %s, dropped %s" % (delivered, n, failed, dropped))

        # 3. Receiver up: a new event goes out at once.
        t0 = time.monotonic()
        api.post("/v1/users/ann/reset")
        got = rx.wait(lambda e: e.get("kind") == "usage_reset" and e.get("seq", 0) > reset[0]["seq"], timeout=5)
        h.check(got, "a second usage_reset delivered within %.1f s" % (time.monotonic() - t0))
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        if rx:
            rx.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_webhooks")

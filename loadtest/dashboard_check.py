#!/usr/bin/env python3
"""Check tollgate's live dashboard in headless Chromium (Python 3 standard library only).

    python3 loadtest/dashboard_check.py --admin http://127.0.0.1:9901 \
        --traffic http://127.0.0.1:8080/hello --out docs/dashboard.png

1. finds Chromium (/usr/bin/chromium; exit 2 with the apt-get command if missing);
2. checks that the admin listener serves the page at / and JSON at /stats;
3. sends ~--rate req/s to --traffic from a background thread while the browser runs;
4. loads the dashboard with `chromium --headless --dump-dom` and then `--screenshot`, both with
   --virtual-time-budget (timers run in virtual time, so the page polls /stats several times
   within well under a second of real time; the fetches themselves are real);
5. fails (exit 1) on any console message of the page: Chromium's --enable-logging=stderr prints
   every console message, whatever its level, as `[...:INFO:CONSOLE:<line>] "<text>", source:
   <url> (<line>)` (console.log and console.error alike; uncaught exceptions and unhandled
   rejections as "Uncaught ..."). The dashboard logs nothing, so every CONSOLE line is a failure;
6. verifies that the numbers move: the dumped DOM's #total-rps (attribute data-value, the raw
   requests/s) must be > 0, after at least 2 polls (body data-polls), with no render error
   (body data-render-error) and the connection pill #conn-status reading "live";
7. verifies the server-side history and the new views: GET /history holds past seconds with
   requests before the browser starts, the page loaded them on open (body
   data-history-initial >= 1, no data-history-error), the status-class legend (#class-legend)
   counts requests, and the API keys table (#key-table, or #key-empty when there are no keys)
   is there.
The admin URL must name the host by IP address or localhost: the admin listener answers 403 to
any other Host (DNS rebinding protection).
Exit 0 and print the requests/s read on success.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
]
# Chromium prints console messages as e.g.
#   [2375:2375:1122/095612.673974:INFO:CONSOLE:4] "Uncaught TypeError: ...", source: http://... (4)
CONSOLE_RE = re.compile(r":(?:INFO|WARNING|ERROR|VERBOSE\d*|FATAL):CONSOLE(?::\d+)?\]|:ERROR:CONSOLE|Uncaught")


def log(msg):
    print("dashboard_check: " + msg, flush=True)


def find_chromium(explicit):
    for cand in ([explicit] if explicit else []) + [CHROMIUM, shutil.which("chromium") or ""]:
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def http_get(url, timeout=5.0):
    req = urllib.request.Request(url, headers={"Cache-Control": "no-cache"})
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return res.status, res.headers.get("Content-Type", ""), res.read()


class Traffic(threading.Thread):
    """Paced GETs to one URL over a keep-alive connection (reconnects on errors)."""

    def __init__(self, url, rate):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("--traffic must be an http:// URL: %r" % url)
        self.host, self.port = u.hostname, u.port or 80
        self.path = (u.path or "/") + ("?" + u.query if u.query else "")
        self.interval = 1.0 / max(1.0, rate)
        self.stop_ev = threading.Event()
        self.ok = self.failed = 0
        self.last_error = ""

    def run(self):
        conn = None
        next_t = time.monotonic()
        while not self.stop_ev.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("GET", self.path, headers={"Host": "%s:%d" % (self.host, self.port)})
                res = conn.getresponse()
                res.read()
                self.ok += 1
                if res.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.failed += 1
                self.last_error = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
                self.stop_ev.wait(0.05)   # don't spin on a refused connection
            next_t += self.interval
            delay = next_t - time.monotonic()
            if delay > 0:
                self.stop_ev.wait(delay)
            elif delay < -1.0:
                next_t = time.monotonic()   # fell behind: don't burst to catch up
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=10)


def run_chromium(chromium, mode_args, url, budget_ms, timeout_s):
    with tempfile.TemporaryDirectory(prefix="tollgate-dash-") as profile:
        cmd = [chromium] + FLAGS + [
            "--user-data-dir=" + profile,
            "--virtual-time-budget=%d" % budget_ms,
            "--window-size=1280,900",
        ] + mode_args + [url]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None, "", "chromium did not finish within %ds" % timeout_s
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def console_lines(stderr):
    return [ln for ln in stderr.splitlines() if CONSOLE_RE.search(ln)]


def attr(dom, elem_id, name):
    m = re.search(r'<[^>]*\bid="%s"[^>]*>' % re.escape(elem_id), dom)
    if not m:
        return None
    a = re.search(r'\b%s="([^"]*)"' % re.escape(name), m.group(0))
    return a.group(1) if a else None


def text_of(dom, elem_id):
    m = re.search(r'<[^>]*\bid="%s"[^>]*>([^<]*)<' % re.escape(elem_id), dom)
    return m.group(1).strip() if m else None


def body_attr(dom, name):
    m = re.search(r"<body\b[^>]*>", dom)
    if not m:
        return None
    a = re.search(r'\b%s="([^"]*)"' % re.escape(name), m.group(0))
    return a.group(1) if a else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--admin", default="http://127.0.0.1:9901", help="admin listener base URL")
    ap.add_argument("--traffic", default="http://127.0.0.1:8080/hello", help="URL to send load to")
    ap.add_argument("--out", default="docs/dashboard.png", help="screenshot path (PNG)")
    ap.add_argument("--rate", type=float, default=200.0, help="traffic requests/s (default 200)")
    ap.add_argument("--budget-ms", type=int, default=6000, help="Chromium --virtual-time-budget")
    ap.add_argument("--warmup", type=float, default=1.5, help="seconds of traffic before loading the page")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM"), help="Chromium binary")
    args = ap.parse_args()

    chromium = find_chromium(args.chromium)
    if not chromium:
        print("dashboard_check: Chromium not found at %s; install it with:\n"
              "    apt-get install -y chromium" % CHROMIUM, file=sys.stderr)
        return 2

    admin = args.admin.rstrip("/") + "/"
    failures = []
    host = urllib.parse.urlsplit(admin).hostname or ""
    if host != "localhost" and not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host):
        log("FAIL --admin %s: the admin listener refuses Host names other than an IP address or "
            "localhost (403)" % admin)
        return 1

    # The admin listener must serve the page and the stats before a browser is worth starting.
    try:
        st, ctype, body = http_get(admin)
        if st != 200 or "text/html" not in ctype.lower():
            failures.append("GET %s: status %d, content-type %r (want 200 text/html)" % (admin, st, ctype))
        st, ctype, body = http_get(admin + "stats")
        stats = json.loads(body)
        if "application/json" not in ctype.lower():
            failures.append("GET %sstats: content-type %r (want application/json)" % (admin, ctype))
        for key in ("version", "uptime_s", "workers", "totals", "routes", "upstreams", "keys"):
            if key not in stats:
                failures.append("GET %sstats: no %r in the JSON" % (admin, key))
        for key in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
            if key not in stats.get("totals", {}):
                failures.append("GET %sstats: no totals.%s" % (admin, key))
    except (OSError, urllib.error.URLError, ValueError) as e:
        log("admin listener %s not usable: %s" % (admin, e))
        return 1
    if failures:
        for f in failures:
            log("FAIL " + f)
        return 1

    traffic = Traffic(args.traffic, args.rate)
    traffic.start()
    t0 = time.monotonic()
    try:
        time.sleep(args.warmup)
        if traffic.ok == 0:
            log("FAIL no successful traffic to %s (%d errors, last: %s)"
                % (args.traffic, traffic.failed, traffic.last_error))
            return 1

        # the server keeps per-second history: a page opened now must start with past seconds
        time.sleep(1.2)   # at least one sample (one a second) taken while traffic ran
        st, ctype, body = http_get(admin + "history")
        hist = json.loads(body)
        samples = hist.get("samples", []) if isinstance(hist, dict) else []
        if st != 200 or "application/json" not in ctype.lower():
            failures.append("GET %shistory: status %d, content-type %r" % (admin, st, ctype))
        if not any(s.get("requests", 0) > 0 for s in samples):
            failures.append("GET %shistory: no past second with requests (%d samples)" % (admin, len(samples)))

        rc, dom, err = run_chromium(chromium, ["--dump-dom"], admin, args.budget_ms, 60)
        if rc != 0:
            failures.append("chromium --dump-dom exited with %s: %s" % (rc, err.strip()[-2000:]))
        console = console_lines(err)

        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.exists(out):
            os.remove(out)
        rc2, _, err2 = run_chromium(chromium, ["--screenshot=" + out], admin, args.budget_ms, 60)
        if rc2 != 0:
            failures.append("chromium --screenshot exited with %s: %s" % (rc2, err2.strip()[-2000:]))
        console += console_lines(err2)
    finally:
        traffic.stop()
    elapsed = time.monotonic() - t0
    log("traffic: %d ok, %d failed in %.1fs (%.0f req/s)"
        % (traffic.ok, traffic.failed, elapsed, traffic.ok / max(elapsed, 1e-9)))

    # (d) console messages
    for ln in console:
        failures.append("console: " + ln.strip())

    # (e) numbers move
    rps_raw = attr(dom, "total-rps", "data-value")
    rps_text = text_of(dom, "total-rps")
    polls = body_attr(dom, "data-polls")
    render_err = body_attr(dom, "data-render-error")
    conn = text_of(dom, "conn-status")
    rps = None
    if rps_raw is None and rps_text is None:
        failures.append("no #total-rps element in the dumped DOM (is %s the dashboard?)" % admin)
    else:
        try:
            rps = float(rps_raw) if rps_raw else None
        except ValueError:
            rps = None
        if rps is None:
            failures.append("#total-rps has no value (text %r, data-value %r, polls %s)" % (rps_text, rps_raw, polls))
        elif not rps > 0:
            failures.append("#total-rps is %r (text %r) after %s polls: the numbers don't move" % (rps, rps_text, polls))
    if not polls or int(polls) < 2:
        failures.append("the page completed %s polls of /stats (want >= 2)" % (polls or "0"))
    if render_err:
        failures.append("render error in the page: " + render_err.replace("&#10;", " | ")[:500])
    if conn != "live":
        failures.append("#conn-status is %r, want 'live'" % conn)

    # (f) history loaded on open, status classes, API keys
    initial = body_attr(dom, "data-history-initial")
    hist_err = body_attr(dom, "data-history-error")
    if not initial or int(initial) < 1:
        failures.append("the page did not start with the server's history (data-history-initial %r)" % initial)
    if hist_err:
        failures.append("loading /history failed in the page: " + hist_err)
    if 'id="class-chart"' not in dom:
        failures.append("no #class-chart (status classes) in the dumped DOM")
    counts = [int(c) for c in re.findall(r'data-class="[0-9]xx" data-count="([0-9]+)"', dom)]
    if len(counts) != 4 or sum(counts) == 0:
        failures.append("#class-legend does not count requests by status class: %r" % counts)
    if 'id="key-table"' not in dom:
        failures.append("no #key-table (API keys) in the dumped DOM")
    elif not re.search(r'<tbody id="key-table">\s*<tr>', dom) and attr(dom, "key-empty", "hidden") is not None:
        failures.append("#key-table has no rows and #key-empty is hidden")

    if not os.path.isfile(out) or os.path.getsize(out) == 0:
        failures.append("no screenshot written to " + out)
    else:
        with open(out, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                failures.append(out + " is not a PNG")

    if failures:
        for f in failures:
            log("FAIL " + f)
        return 1
    log("OK: total requests/s = %s (shown %r, %s polls), screenshot %s" % (rps, rps_text, polls, args.out))
    print("%.2f" % rps)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Helpers for loadtest/run.sh (Python 3 standard library only).

Subcommands:
  wait PORT TIMEOUT_S             wait until GET / on 127.0.0.1:PORT answers 200
  idle PID PORT N                 RSS per idle keep-alive client connection of process PID
  tlswait PORT TIMEOUT_S CA [OUT] wait until GET / over TLS (SNI localhost, verified against CA)
                                  answers 200; with OUT, write the negotiated version and cipher
  tlsidle PID PORT N CA           `idle` over TLS: handshake + one request per connection
  wrk FILE                        parse `wrk --latency` output into KEY=VALUE lines
  oha FILE                        print requests/s from `oha --json` output
  table RESULTS_FILE              render the markdown table from KEY=VALUE lines
  tlstable RESULTS_FILE           render tls.sh's markdown table (pairs, means, ratios)
"""

import json
import re
import socket
import ssl
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tollgate-loadtest\r\n\r\n"


def read_response(sock):
    """Reads one HTTP/1.1 response (Content-Length or chunked) and returns (status, keep_alive)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(body) < need:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed inside the body")
            body += chunk
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed inside a chunked body")
            body += chunk
    keep_alive = headers.get("connection", "").lower() != "close"
    return status, keep_alive


# The name both TLS servers' certificate is issued for (tls.sh), sent as SNI and verified.
TLS_NAME = "localhost"


def tls_context(ca):
    """A client context that verifies the server against `ca` (the test certificate itself)."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def connect(port, timeout, ctx=None):
    """A TCP connection to 127.0.0.1:port, wrapped in TLS (handshake done) when ctx is given."""
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx is None:
        return s
    try:
        return ctx.wrap_socket(s, server_hostname=TLS_NAME)
    except BaseException:
        s.close()
        raise


def cmd_wait(port, timeout_s, want="200", ctx=None, out=None):
    """Waits until GET / answers with status `want` (e.g. 403 for a route that needs a key)."""
    deadline = time.monotonic() + float(timeout_s)
    last = None
    while time.monotonic() < deadline:
        try:
            with connect(port, 1, ctx) as s:
                if out is not None:
                    with open(out, "w") as f:
                        f.write(f"{s.version()} {s.cipher()[0]}\n")
                s.sendall(REQUEST)
                status, _ = read_response(s)
                if status == int(want):
                    return 0
                last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    print(f"127.0.0.1:{port} not ready after {timeout_s}s ({last})", file=sys.stderr)
    return 1


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cmd_tlswait(port, timeout_s, ca, out=None):
    return cmd_wait(port, timeout_s, "200", tls_context(ca), out)


def cmd_idle(pid, port, n, ctx=None):
    pid, port, n = int(pid), int(port), int(n)
    time.sleep(1.0)  # let the process settle after the load runs
    before = vm_rss_kib(pid)
    socks = []
    failed = 0
    try:
        for _ in range(n):
            s = connect(port, 5, ctx)
            s.sendall(REQUEST)
            status, keep_alive = read_response(s)
            if status != 200 or not keep_alive:
                failed += 1
            socks.append(s)
        time.sleep(1.0)  # idle: nothing is in flight now
        after = vm_rss_kib(pid)
        # Check that the connections are still open (no EOF waiting) at the time of the reading.
        alive = 0
        for s in socks:
            s.setblocking(False)
            try:
                alive += 0 if s.recv(1) == b"" else 1  # data would be unexpected; count as open
            except (BlockingIOError, ssl.SSLWantReadError):
                alive += 1
            except OSError:  # includes ssl.SSLError (e.g. an alert), ssl.SSLEOFError
                pass
    finally:
        for s in socks:
            s.close()
    print(f"rss_before_kib={before}")
    print(f"rss_after_kib={after}")
    print(f"idle_conns={n}")
    print(f"idle_alive={alive}")
    print(f"idle_failed={failed}")
    print(f"rss_per_conn_kib={(after - before) / n:.2f}")
    return 0


def cmd_tlsidle(pid, port, n, ca):
    """`idle` over TLS. Python's ssl module (OpenSSL) checks the certificate and completes the
    handshake in wrap_socket; TLS 1.3 session tickets the server sends after the handshake are
    read along with the response, so nothing is left in flight on an idle connection."""
    return cmd_idle(pid, port, n, tls_context(ca))


UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unparsable latency {text!r}")
    return float(m.group(1)) * UNIT_US[m.group(2)]


def cmd_wrk(path):
    text = open(path).read()
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", text, re.M)
    if not m:
        print(f"cannot parse wrk output {path}:\n{text}", file=sys.stderr)
        return 1
    out["requests"] = int(m.group(1))
    out["rps"] = float(re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M).group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", text, re.M)
        if m:
            out[f"p{pct}_us"] = to_us(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["sock_errors"] = sum(int(x) for x in m.groups()) if m else 0
    for k, v in out.items():
        print(f"{k}={v}")
    return 0


def cmd_oha(path):
    text = open(path).read()
    try:
        rps = float(json.loads(text)["summary"]["requestsPerSec"])
    except (ValueError, KeyError, TypeError):
        m = re.search(r"Requests/sec:\s*([\d.]+)", text)
        if not m:
            print(f"cannot parse oha output {path}", file=sys.stderr)
            return 1
        rps = float(m.group(1))
    print(f"{rps:.2f}")
    return 0


def cmd_table(path):
    r = {}
    for line in open(path):
        line = line.rstrip("\n")
        if "=" in line:
            k, _, v = line.partition("=")
            r[k] = v

    def num(key):
        try:
            return float(r[key])
        except (KeyError, ValueError):
            return None

    def fmt(v, digits):
        return "n/a" if v is None else f"{v:,.{digits}f}"

    def ratio(a, b):
        return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    rows = [
        ("rps, wrk (higher is better)", "rps", 0),
        ("p50 latency, µs", "p50_us", 0),
        ("p99 latency, µs", "p99_us", 0),
        ("CPU µs / request", "cpu_us_per_req", 2),
        ("RSS KiB / idle keep-alive connection", "rss_per_conn_kib", 2),
    ]
    if "tollgate.oha_rps" in r or "nginx.oha_rps" in r:
        rows.insert(1, ("rps, oha (higher is better)", "oha_rps", 0))
    out = ["| metric | tollgate | nginx | ratio (tollgate/nginx) |", "|---|---:|---:|---:|"]
    for label, key, digits in rows:
        t, n = num(f"tollgate.{key}"), num(f"nginx.{key}")
        out.append(f"| {label} | {fmt(t, digits)} | {fmt(n, digits)} | {ratio(t, n)} |")
    variants = [
        ("tollgate_limits", "limits active (gateway + route + key plan)", "tollgate + limits"),
        ("tollgate_obs", "metrics + JSON access log to a file", "tollgate + observability"),
    ]
    for name, what, col in variants:
        tl = num(f"{name}.cpu_us_per_req")
        if tl is None:
            continue
        t = num("tollgate.cpu_us_per_req")
        out.append("")
        out.append(f"| {what} | tollgate | {col} | overhead |")
        out.append("|---|---:|---:|---:|")
        over = "n/a" if t in (None, 0) else f"{(tl / t - 1) * 100:+.1f}%"
        out.append(f"| CPU µs / request | {fmt(t, 2)} | {fmt(tl, 2)} | {over} |")
        out.append(f"| rps, wrk | {fmt(num('tollgate.rps'), 0)} | {fmt(num(name + '.rps'), 0)} | |")
        out.append(f"| non-2xx responses | {r.get('tollgate.non2xx', '?')} | {r.get(name + '.non2xx', '?')} | |")
    out.append("")
    out.append(f"- tollgate driver: {r.get('driver', '?')} (requested: {r.get('driver_requested', '?')})")
    out.append(f"- load: `{r.get('wrk_cmd', '?')}` after a {r.get('warmup', '?')}s warm-up"
               + (f"; oha: `{r['oha_cmd']}`" if r.get("oha_cmd") else "; oha: not on PATH, skipped"))
    out.append(f"- pinning: proxy worker on core 0; origin nginx worker and load generator on core {r.get('last_core', '?')}")
    out.append(f"- idle connections: {r.get('idle_conns', '?')} per proxy")
    for p in ("tollgate", "nginx"):
        out.append(
            f"- {p}: {r.get(p + '.requests', '?')} requests in the measured run, "
            f"non-2xx {r.get(p + '.non2xx', '?')}, socket errors {r.get(p + '.sock_errors', '?')}, "
            f"CPU {r.get(p + '.cpu_s', '?')} s; idle conns alive {r.get(p + '.idle_alive', '?')}"
            f"/{r.get(p + '.idle_conns', '?')}, RSS {r.get(p + '.rss_before_kib', '?')} -> "
            f"{r.get(p + '.rss_after_kib', '?')} KiB"
        )
    out.append(f"- nginx: {r.get('nginx_version', '?')}; wrk: {r.get('wrk_version', '?')}")
    out.append(f"- kernel: {r.get('kernel', '?')}")
    out.append(f"- CPU: {r.get('cpu_model', '?')} ({r.get('ncpu', '?')} cores online)")
    out.append(f"- date: {r.get('date', '?')}; tollgate commit: {r.get('commit', '?')}")
    print("\n".join(out))
    return 0


def read_kv(path):
    r = {}
    for line in open(path):
        k, sep, v = line.rstrip("\n").partition("=")
        if sep:
            r[k] = v
    return r


def cmd_tlstable(path):
    """tls.sh's table: per server the mean over the alternating pairs of each figure, the ratio
    of the means (tollgate/nginx), the range of the per-pair ratios, and the issue's target."""
    r = read_kv(path)
    pairs = int(r.get("pairs", "0"))
    servers = ("tollgate", "nginx")

    def values(server, key):
        out = []
        for i in range(1, pairs + 1):
            try:
                out.append(float(r[f"{server}.{i}.{key}"]))
            except (KeyError, ValueError):
                pass
        return out

    def mean(v):
        return sum(v) / len(v) if v else None

    def fmt(v, digits):
        return "n/a" if v is None else f"{v:,.{digits}f}"

    rows = [
        ("(a) CPU µs / request, keep-alive GETs", "ka_cpu_us", 2, "≤ 1.0× nginx"),
        ("(a) requests/s, keep-alive", "ka_rps", 0, ""),
        ("(b) CPU µs / full handshake (new connection per request)", "hs_cpu_us", 1, "≤ 1.0× nginx"),
        ("(b) handshakes/s", "hs_rps", 0, ""),
        ("(c) RSS KiB / idle TLS keep-alive connection", "rss_per_conn_kib", 2, "≤ nginx's"),
    ]
    out = [
        "| metric | tollgate | nginx | ratio (tollgate/nginx) | per-pair ratios | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, key, digits, target in rows:
        t, n = values("tollgate", key), values("nginx", key)
        mt, mn = mean(t), mean(n)
        ratio = "n/a" if mt is None or not mn else f"{mt / mn:.2f}"
        per = [a / b for a, b in zip(t, n) if b]
        spread = f"{min(per):.2f}–{max(per):.2f}" if len(per) > 1 else ("n/a" if not per else f"{per[0]:.2f}")
        out.append(f"| {label} | {fmt(mt, digits)} | {fmt(mn, digits)} | {ratio} | {spread} | {target} |")
    out.append("")
    measured = [p for p in servers if values(p, "ka_cpu_us")]
    if len(measured) == 2:
        out.append(f"- {pairs} alternating pairs (tollgate then nginx, each a freshly started process "
                   "measuring (c), then (a), then (b)); figures are means over the pairs")
    else:
        out.append(f"- {pairs} runs of {' '.join(measured) or 'nothing'} (each a freshly started process "
                   "measuring (c), then (a), then (b)); figures are means over the runs")
    for p in servers:
        if not values(p, "ka_cpu_us"):
            out.append(f"- {p}: not measured ({r.get(p + '.skipped', 'skipped')})")
            continue
        out.append(f"- {p}: negotiated {r.get(p + '.negotiated', '?')}; per pair (a) CPU µs/req "
                   + ", ".join(fmt(v, 2) for v in values(p, "ka_cpu_us"))
                   + "; (b) CPU µs/handshake " + ", ".join(fmt(v, 1) for v in values(p, "hs_cpu_us"))
                   + "; (c) KiB/conn " + ", ".join(fmt(v, 2) for v in values(p, "rss_per_conn_kib")))
        errs = [
            f"{k}={int(sum(values(p, k)))}"
            for k in ("ka_non2xx", "ka_sock_errors", "hs_non2xx", "hs_sock_errors", "idle_failed")
        ]
        out.append(f"  - requests (a) {int(sum(values(p, 'ka_requests')))}, (b) {int(sum(values(p, 'hs_requests')))}; "
                   f"full handshakes counted by the client in (b) {int(sum(values(p, 'hs_full')))}, "
                   f"resumed {int(sum(values(p, 'hs_resumed')))}; idle conns alive "
                   f"{int(sum(values(p, 'idle_alive')))}/{int(sum(values(p, 'idle_conns')))}; "
                   + ", ".join(errs))
    out.append(f"- (a) `{r.get('ka_cmd', '?')}`; (b) `{r.get('hs_cmd', '?')}`; (c) {r.get('idle_n', '?')} "
               "connections from lt.py tlsidle (Python ssl), RSS delta on the fresh process")
    out.append(f"- full handshakes: {r.get('resumption_note', '?')}")
    out.append(f"- pinning: server worker on core 0; origin nginx worker and clients on core {r.get('last_core', '?')}")
    out.append(f"- certificate: {r.get('cert', '?')}")
    out.append(f"- nginx: {r.get('nginx_version', '?')}; wrk: {r.get('wrk_version', '?')}; {r.get('openssl_version', '?')}")
    out.append(f"- tollgate driver: {r.get('driver', '?')} (requested: {r.get('driver_requested', '?')})")
    out.append(f"- kernel: {r.get('kernel', '?')}; CPU: {r.get('cpu_model', '?')} ({r.get('ncpu', '?')} cores online)")
    out.append(f"- date: {r.get('date', '?')}; tollgate commit: {r.get('commit', '?')}")
    print("\n".join(out))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    fn = {
        "wait": cmd_wait,
        "idle": cmd_idle,
        "tlswait": cmd_tlswait,
        "tlsidle": cmd_tlsidle,
        "wrk": cmd_wrk,
        "oha": cmd_oha,
        "table": cmd_table,
        "tlstable": cmd_tlstable,
    }.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        return 2
    return fn(*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

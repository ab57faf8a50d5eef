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
  h2wait PORT TIMEOUT_S PATH [CA] wait until an HTTP/2 GET PATH answers 200 (h2c prior knowledge,
                                  or TLS with ALPN h2 when CA is given)
  h2idle PID PORT N PATH HPACK [CA]  RSS per idle HTTP/2 connection of process PID: preface,
                                  SETTINGS exchange and one GET PATH per connection, then idle
                                  (h2.sh (c)); HPACK literal | indexed (:authority indexed)
  h2load FILE                     parse h2load output into KEY=VALUE lines
  h2table RESULTS_FILE            render h2.sh's markdown table (pairs, means, ratios)
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


# ---------------------------------------------------------------- HTTP/2 (h2.sh)
# A minimal HTTP/2 client on raw frames (RFC 9113), enough to open a connection, make one GET and
# leave the connection idle: no PyPI package, so it runs wherever python3 does.

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_RST_STREAM, H2_SETTINGS, H2_PING, H2_GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
H2_END_STREAM, H2_ACK, H2_END_HEADERS, H2_PADDED, H2_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20

# HPACK static table entries (RFC 7541 Appendix A) used for the request, and the :status ones.
HPACK_AUTHORITY, HPACK_METHOD_GET, HPACK_PATH, HPACK_SCHEME_HTTP, HPACK_SCHEME_HTTPS = 1, 2, 4, 6, 7
HPACK_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def hpack_literal(index, value, indexing=False):
    """A field as "Literal Header Field without Indexing — Indexed Name" (RFC 7541 §6.2.2):
    0000 + 4-bit name index of the static table, then the value as a plain (not Huffman) string
    literal (§5.2: H = 0, 7-bit length). The decoder's dynamic table is never touched.
    With `indexing`: "with Incremental Indexing" (§6.2.1: 01 + 6-bit index) instead, as
    browsers and h2load send :authority and most fields, so the server's decoder stores the
    field in its dynamic table."""
    v = value.encode("ascii")
    assert 0 < index < 15 and len(v) < 127
    return bytes([(0x40 if indexing else 0) | index, len(v)]) + v


def h2_request_block(path, authority, scheme, indexing=False):
    return (hpack_literal(HPACK_METHOD_GET, "GET")
            + hpack_literal(HPACK_SCHEME_HTTPS if scheme == "https" else HPACK_SCHEME_HTTP, scheme)
            + hpack_literal(HPACK_PATH, path)
            + hpack_literal(HPACK_AUTHORITY, authority, indexing))


def h2_status(block):
    """:status from the start of a response header block (servers send it first, §8.3.2): an
    indexed static entry (0x88 = 200 ...), or a literal with static name index 8 and a plain or
    Huffman-coded value. Anything else: None (counted as a failure, never guessed)."""
    if not block:
        return None
    b0 = block[0]
    if b0 & 0x80:
        return HPACK_STATUS.get(b0 & 0x7F)
    if b0 in (0x48, 0x08, 0x18) and len(block) >= 2:  # with incremental indexing / without / never
        huff, n = block[1] & 0x80, block[1] & 0x7F
        raw = bytes(block[2:2 + n])
        if not huff and raw.isdigit():
            return int(raw)
        # Huffman codes of the digits are 5 bits for 0-2, 6 bits for 3-9 (RFC 7541 Appendix B).
        codes = {"0": "00000", "1": "00001", "2": "00010", "3": "011001", "4": "011010",
                 "5": "011011", "6": "011100", "7": "011101", "8": "011110", "9": "011111"}
        bits = "".join(f"{x:08b}" for x in raw)
        out = ""
        while len(out) < 3:
            for d, c in codes.items():
                if bits.startswith(c):
                    out += d
                    bits = bits[len(c):]
                    break
            else:
                return None
        return int(out) if set(bits) <= {"1"} and len(bits) < 8 else None
    return None


def h2_read_frame(sock, buf):
    """The next frame (type, flags, stream, payload) from sock, `buf` holding what was read past
    the previous frame."""
    while True:
        if len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) >= 9 + n:
                ftype, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload = bytes(buf[9:9 + n])
                del buf[:9 + n]
                return ftype, flags, stream, payload
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk


def h2_connect(port, timeout, ca=None):
    """A connection ready for HTTP/2: plain (h2c with prior knowledge) or TLS with ALPN h2 only,
    the certificate verified against `ca`."""
    if ca is None:
        return connect(port, timeout)
    ctx = tls_context(ca)
    ctx.set_alpn_protocols(["h2"])
    s = connect(port, timeout, ctx)
    if s.selected_alpn_protocol() != "h2":
        proto = s.selected_alpn_protocol()
        s.close()
        raise ConnectionError(f"ALPN selected {proto!r}, not h2")
    return s


def h2_get(sock, path, scheme, indexing=False):
    """On a new connection: client preface + an empty SETTINGS + HEADERS (GET path, stream 1,
    END_STREAM) in one write, then reads until the server's SETTINGS was acknowledged (by us),
    ours was acknowledged (by the server) and stream 1's response ended, so nothing is in flight
    afterwards. Returns the response status."""
    block = h2_request_block(path, TLS_NAME if scheme == "https" else "127.0.0.1", scheme, indexing)
    sock.sendall(H2_PREFACE + h2_frame(H2_SETTINGS, 0, 0)
                 + h2_frame(H2_HEADERS, H2_END_STREAM | H2_END_HEADERS, 1, block))
    buf = bytearray()
    server_settings = settings_acked = ended = False
    status = None
    while not (server_settings and settings_acked and ended):
        ftype, flags, stream, payload = h2_read_frame(sock, buf)
        if ftype == H2_SETTINGS:
            if flags & H2_ACK:
                settings_acked = True
            else:
                sock.sendall(h2_frame(H2_SETTINGS, H2_ACK, 0))
                server_settings = True
        elif ftype == H2_PING and not flags & H2_ACK:
            sock.sendall(h2_frame(H2_PING, H2_ACK, 0, payload))
        elif ftype == H2_GOAWAY:
            code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
            raise ConnectionError(f"GOAWAY (error code {code})")
        elif ftype == H2_RST_STREAM and stream == 1:
            raise ConnectionError(f"RST_STREAM on stream 1 (error code {int.from_bytes(payload[:4], 'big')})")
        elif ftype == H2_HEADERS and stream == 1:
            block = payload
            if flags & H2_PADDED:
                block = block[1:len(block) - payload[0]]
            if flags & H2_PRIORITY:
                block = block[5:]
            if status is None:
                status = h2_status(block)
            ended = ended or bool(flags & H2_END_STREAM)
        elif ftype == H2_DATA and stream == 1:
            ended = ended or bool(flags & H2_END_STREAM)
        # WINDOW_UPDATE, CONTINUATION (of a response head whose :status came first), ...: nothing to do
    return status


def h2_open(sock):
    """An idle HTTP/2 connection is open when nothing is readable, or only frames other than
    GOAWAY (a PING, say): EOF, an error or a GOAWAY mean the server is closing it."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False
    if not data:
        return False
    i = 0
    while i + 9 <= len(data):
        if data[i + 3] == H2_GOAWAY:
            return False
        i += 9 + int.from_bytes(data[i:i + 3], "big")
    return True


def cmd_h2wait(port, timeout_s, path, ca=None):
    deadline = time.monotonic() + float(timeout_s)
    last = None
    while time.monotonic() < deadline:
        try:
            with h2_connect(port, 1, ca) as s:
                status = h2_get(s, path, "https" if ca else "http")
                if status == 200:
                    return 0
                last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    print(f"127.0.0.1:{port} answers no HTTP/2 GET {path} with 200 after {timeout_s}s ({last})", file=sys.stderr)
    return 1


def cmd_h2idle(pid, port, n, path, hpack, ca=None):
    """RSS per idle HTTP/2 connection: as `idle`, each connection doing the HTTP/2 preface and
    SETTINGS exchange and one GET (h2_get) before it idles. `hpack`: "literal" (no field enters
    the server's HPACK dynamic table) or "indexed" (:authority does, as with real clients)."""
    pid, n = int(pid), int(n)
    if hpack not in ("literal", "indexed"):
        raise ValueError(f"hpack must be literal or indexed, not {hpack!r}")
    indexing = hpack == "indexed"
    scheme = "https" if ca else "http"
    time.sleep(1.0)
    before = vm_rss_kib(pid)
    socks = []
    failed = 0
    try:
        for _ in range(n):
            s = h2_connect(port, 5, ca)
            socks.append(s)
            if h2_get(s, path, scheme, indexing) != 200:
                failed += 1
        time.sleep(1.0)  # idle: nothing is in flight now
        after = vm_rss_kib(pid)
        alive = sum(1 for s in socks if h2_open(s))
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


def cmd_h2load(path):
    """KEY=VALUE lines from h2load's summary: requests = 2xx responses completed in the run."""
    text = open(path).read()
    out = {}
    m = re.search(r"^finished in ([\d.]+)s, ([\d.]+) req/s", text, re.M)
    m2 = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                   r"(\d+) errored, (\d+) timeout", text, re.M)
    m3 = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if not (m and m2 and m3):
        print(f"cannot parse h2load output {path}:\n{text}", file=sys.stderr)
        return 1
    out["seconds"] = float(m.group(1))
    out["rps"] = float(m.group(2))
    out["requests"] = int(m3.group(1))
    out["done"] = int(m2.group(3))
    out["failed"] = int(m2.group(5))
    out["errored"] = int(m2.group(6))
    out["timeout"] = int(m2.group(7))
    out["non2xx"] = sum(int(x) for x in m3.groups()[1:])
    m = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        out["lat_min_us"] = to_us(m.group(1))
        out["lat_max_us"] = to_us(m.group(2))
        out["lat_mean_us"] = to_us(m.group(3))
        out["lat_sd_us"] = to_us(m.group(4))
    m = re.search(r"^Application protocol: (\S+)", text, re.M)
    out["protocol"] = m.group(1) if m else "none"
    m = re.search(r"^TLS Protocol: (\S+)", text, re.M)
    if m:
        c = re.search(r"^Cipher: (\S+)", text, re.M)
        out["tls"] = m.group(1) + (" " + c.group(1) if c else "")
    for k, v in out.items():
        print(f"{k}={v}")
    return 0


def pair_values(r, server, key):
    """Per-pair figures `SERVER.I.KEY` for I = 1..pairs (missing ones skipped)."""
    out = []
    for i in range(1, int(r.get("pairs", "0")) + 1):
        try:
            out.append(float(r[f"{server}.{i}.{key}"]))
        except (KeyError, ValueError):
            pass
    return out


def cmd_h2table(path):
    """h2.sh's table: the mean over the alternating pairs, per server, of each figure, the ratio
    of the means (tollgate/nginx) and the range of the per-pair ratios."""
    r = read_kv(path)
    pairs = int(r.get("pairs", "0"))
    servers = ("tollgate", "nginx")

    def mean(v):
        return sum(v) / len(v) if v else None

    def fmt(v, digits):
        return "n/a" if v is None else f"{v:,.{digits}f}"

    rows = []
    loads = [("tls_mock", "TLS (ALPN h2), mock"), ("tls_proxy", "TLS (ALPN h2), proxied"),
             ("h2c_mock", "h2c, mock"), ("h2c_proxy", "h2c, proxied")]
    for load, what in loads:
        if not any(pair_values(r, p, f"{load}_cpu_us") for p in servers):
            continue
        letter = "(a)" if load.startswith("tls") else "(b)"
        rows += [
            (f"{letter} {what}: CPU µs / request", f"{load}_cpu_us", 2),
            (f"{letter} {what}: requests/s", f"{load}_rps", 0),
            (f"{letter} {what}: mean latency, µs", f"{load}_lat_mean_us", 0),
        ]
    idle_kinds = [("tls", "TLS"), ("tls_ix", "TLS, :authority indexed"),
                  ("h2c", "h2c"), ("h2c_ix", "h2c, :authority indexed")]
    idle_kinds = [(k, w) for k, w in idle_kinds
                  if any(pair_values(r, p, f"idle_{k}_rss_per_conn_kib") for p in servers)]
    rows += [(f"(c) RSS KiB / idle HTTP/2 connection, {what}", f"idle_{k}_rss_per_conn_kib", 2)
             for k, what in idle_kinds]
    out = [
        "| metric | tollgate | nginx | ratio (tollgate/nginx) | per-pair ratios |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, digits in rows:
        t, n = pair_values(r, "tollgate", key), pair_values(r, "nginx", key)
        mt, mn = mean(t), mean(n)
        ratio = "n/a" if mt is None or not mn else f"{mt / mn:.2f}"
        per = [a / b for a, b in zip(t, n) if b]
        spread = f"{min(per):.2f}–{max(per):.2f}" if len(per) > 1 else ("n/a" if not per else f"{per[0]:.2f}")
        out.append(f"| {label} | {fmt(mt, digits)} | {fmt(mn, digits)} | {ratio} | {spread} |")
    out.append("")
    def was_measured(p):
        return bool(pair_values(r, p, "tls_mock_cpu_us")) or any(
            pair_values(r, p, f"idle_{k}_rss_per_conn_kib") for k, _ in idle_kinds)

    measured = [p for p in servers if was_measured(p)]
    loaded = any(pair_values(r, p, "tls_mock_cpu_us") for p in servers)
    if len(measured) == 2:
        out.append(f"- {pairs} alternating pairs (tollgate then nginx); figures are means over the pairs. "
                   "Each server run: a freshly started process for each (c) figure"
                   + (", the load runs (a) and (b) on the last one" if loaded else " (IDLE_ONLY=1: no load runs)"))
    else:
        out.append(f"- {pairs} runs of {' '.join(measured) or 'nothing'}; figures are means over the runs")
    for p in servers:
        if not was_measured(p):
            out.append(f"- {p}: not measured ({r.get(p + '.skipped', 'skipped')})")
            continue
        parts = []
        for load, _ in loads:
            req = pair_values(r, p, f"{load}_requests")
            if not req:
                continue
            bad = sum(sum(pair_values(r, p, f"{load}_{k}")) for k in ("non2xx", "failed", "errored", "timeout"))
            parts.append(f"{load} {int(sum(req))} requests ({int(bad)} non-2xx/failed/errored/timeout), "
                         f"protocol {r.get(f'{p}.1.{load}_protocol', '?')}")
        out.append(f"- {p}: " + ("; ".join(parts) or "idle measurements only (IDLE_ONLY=1)"))
        for kind, _ in idle_kinds:
            out.append(f"  - (c) {kind}: KiB/conn per pair "
                       + ", ".join(fmt(v, 2) for v in pair_values(r, p, f"idle_{kind}_rss_per_conn_kib"))
                       + f"; alive {int(sum(pair_values(r, p, f'idle_{kind}_idle_alive')))}"
                       + f"/{int(sum(pair_values(r, p, f'idle_{kind}_idle_conns')))}, "
                       + f"failed GETs {int(sum(pair_values(r, p, f'idle_{kind}_idle_failed')))}")
        if r.get(f"{p}.1.tls_mock_tls"):
            out.append(f"  - h2load negotiated {r[f'{p}.1.tls_mock_tls']}")
    out.append(f"- (a), (b): `{r.get('load_cmd', '?')}`, after a {r.get('warmup', '?')}s warm-up run; CPU = "
               "utime+stime of the server process (nginx: its worker) over the measured run / 2xx responses")
    out.append(f"- mock: {r.get('mock_note', '?')}; proxied: {r.get('proxy_note', '?')}")
    out.append(f"- (c) {r.get('idle_n', '?')} connections from lt.py h2idle (preface, SETTINGS exchange, one "
               "GET of the mock path each, then idle), VmRSS after − before on a fresh process, / N. The GET's "
               "fields are HPACK literals without indexing, so nothing enters the server's HPACK dynamic table; "
               "in the \"indexed\" rows :authority goes with incremental indexing (one table entry), as "
               f"browsers and h2load send it (IDLE_HPACK={r.get('idle_hpack', '?')})")
    out.append(f"- pinning: server worker on core 0; origin nginx worker and clients on core {r.get('last_core', '?')}")
    out.append(f"- nginx: {r.get('nginx_version', '?')}; {r.get('h2load_version', '?')}; {r.get('openssl_version', '?')}")
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
        "h2wait": cmd_h2wait,
        "h2idle": cmd_h2idle,
        "h2load": cmd_h2load,
        "h2table": cmd_h2table,
    }.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        return 2
    return fn(*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Slow request bodies against a threaded origin (issue 8, A2), Python 3 standard library only.

Starts an origin with a fixed pool of handler threads (like a gunicorn sync worker pool: one
request per connection, `Connection: close`), starts tollgate in front of it, then runs:

  * SLOW attackers, each sending `POST /upload` with a BODY-byte Content-Length one byte per
    second for the whole run (slowhttptest's "slow body" attack), reconnecting when cut off;
  * one victim client sending `GET /item` requests, one every 100 ms, each on a new connection.

It prints the victim's outcome (statuses, p50/p99 latency) and how the attackers were answered,
and exits 1 when any victim request failed. Run it against a build:

  python3 loadtest/slowbody.py --bin target/release/tollgate [--duration 30] [--slow 40]

Extra `[server.*]` lines can be given with --server-extra (e.g. to switch min_body_rate off).
"""

import argparse
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


class Origin:
    """A threaded origin: a fixed pool of handler threads, one request per connection."""

    def __init__(self, threads):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.jobs = queue.Queue()
        self.uploads_completed = 0
        self.lock = threading.Lock()
        for _ in range(threads):
            threading.Thread(target=self.worker, daemon=True).start()
        threading.Thread(target=self.acceptor, daemon=True).start()

    def acceptor(self):
        while True:
            c, _ = self.sock.accept()
            self.jobs.put(c)

    def worker(self):
        while True:
            c = self.jobs.get()
            try:
                c.settimeout(120)
                self.handle(c)
            except OSError:
                pass
            finally:
                c.close()

    def handle(self, c):
        head, rest = read_head(c)
        if head is None:
            return
        length = 0
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        while len(rest) < length:
            chunk = c.recv(65536)
            if not chunk:
                return
            rest += chunk
        if length:
            with self.lock:
                self.uploads_completed += 1
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def status_of(sock):
    head, _ = read_head(sock)
    if head is None:
        return None
    return int(head.split(" ", 2)[1])


def attacker(port, body, stop, outcomes, lock):
    while not stop.is_set():
        started = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(
                b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                b"Content-Length: " + str(body).encode() + b"\r\n\r\n"
            )
            s.setblocking(False)
            status = None
            sent = 0
            while not stop.is_set() and sent < body:
                try:
                    s.send(b"x")
                    sent += 1
                except BlockingIOError:
                    pass
                try:
                    data = s.recv(4096)
                    if not data:
                        break
                    status = int(data.split(b" ", 2)[1])
                    break
                except BlockingIOError:
                    pass
                stop.wait(1.0)
            s.close()
            with lock:
                key = "cut after %ds with %s" % (round(time.monotonic() - started), status)
                if status is None:
                    key = "still sending at the end" if stop.is_set() else "closed without status"
                outcomes[key] = outcomes.get(key, 0) + 1
        except OSError as e:
            with lock:
                outcomes["error " + type(e).__name__] = outcomes.get("error " + type(e).__name__, 0) + 1
            stop.wait(0.5)


def victim(port, stop, results):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=40) as s:
                s.sendall(b"GET /item HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                st = status_of(s)
        except OSError:
            st = None
        results.append((st, time.monotonic() - t0))
        stop.wait(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/tollgate")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--slow", type=int, default=40)
    ap.add_argument("--body", type=int, default=100_000)
    ap.add_argument("--origin-threads", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--server-extra", default="")
    args = ap.parse_args()

    origin = Origin(args.origin_threads)
    port = free_port()
    cfg = f"""[server]
listen = ["127.0.0.1:{port}"]
workers = {args.workers}
{args.server_extra}

[[upstream]]
name = "origin"
targets = ["127.0.0.1:{origin.port}"]
response_timeout_ms = 5000

[[route]]
key = "ANY /{{proxy+}}"
upstream = "origin"
"""
    tmp = tempfile.mkdtemp(prefix="tollgate-slowbody-")
    path = os.path.join(tmp, "tollgate.toml")
    with open(path, "w") as f:
        f.write(cfg)
    proc = subprocess.Popen([args.bin, "-c", path], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        stop = threading.Event()
        outcomes, lock, results = {}, threading.Lock(), []
        threads = [
            threading.Thread(target=attacker, args=(port, args.body, stop, outcomes, lock))
            for _ in range(args.slow)
        ]
        for t in threads:
            t.start()
        time.sleep(2)  # let the attack take hold before measuring
        v = threading.Thread(target=victim, args=(port, stop, results))
        v.start()
        time.sleep(args.duration)
        stop.set()
        v.join()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    ok = [lat for st, lat in results if st == 200]
    statuses = {}
    for st, _ in results:
        statuses[st] = statuses.get(st, 0) + 1
    lats = sorted(ok)

    def pct(p):
        return lats[min(len(lats) - 1, int(p * len(lats)))] * 1000 if lats else float("nan")

    print(f"attack: {args.slow} clients, {args.body}-byte bodies at 1 byte/s, "
          f"origin with {args.origin_threads} threads, {args.duration:.0f} s measured")
    print(f"victim requests: {len(results)}, served 200: {len(ok)} "
          f"({100.0 * len(ok) / max(1, len(results)):.1f} %), statuses: {statuses}")
    print(f"victim latency of served requests: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms")
    print(f"attackers: {dict(sorted(outcomes.items()))}")
    print(f"uploads the origin received whole: {origin.uploads_completed}")
    return 0 if results and len(ok) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

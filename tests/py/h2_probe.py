#!/usr/bin/env python3
"""HTTP/2 probe with the Python `h2` package (an HTTP/2 stack independent of tollgate's),
run by tests/h2_clients.rs against an in-process gateway.

Usage: h2_probe.py HOST PORT (h2c|tls)

Over one connection (h2c prior knowledge, or TLS with ALPN h2, certificate not verified): a
GET, a POST with a body, five concurrent GETs, a PING, a malformed request (a
connection-specific field, RFC 9113 §8.2.2) that must be reset with PROTOCOL_ERROR, and a
GET after it. Prints one line per result; the Rust test asserts on them. Exits non-zero on
any protocol surprise (GOAWAY, close, timeout).
"""
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events

TIMEOUT = 10.0  # liveness only


def connect(host, port, mode):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    if mode == "tls":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            sys.exit("ALPN did not select h2: %r" % sock.selected_alpn_protocol())
    return sock


class Client:
    def __init__(self, sock, scheme):
        self.sock = sock
        self.scheme = scheme
        # validation off so the probe can send a malformed request on purpose
        cfg = h2.config.H2Configuration(
            client_side=True,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=True,
        )
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.resets = {}
        self.pings = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            sys.exit("server closed the connection")
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                self.streams.setdefault(ev.stream_id, {"body": b""})["headers"] = dict(
                    (k.decode(), v.decode()) for k, v in ev.headers
                )
            elif isinstance(ev, h2.events.DataReceived):
                self.streams.setdefault(ev.stream_id, {"body": b""})["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.streams.setdefault(ev.stream_id, {"body": b""})["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = int(ev.error_code)
            elif isinstance(ev, h2.events.PingAckReceived):
                self.pings.append(ev.ping_data)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                sys.exit("GOAWAY: %r" % ev)
        self.flush()

    def request(self, method, path, body=None, extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", self.scheme),
            (":authority", "localhost"),
            (":path", path),
        ]
        if body is not None:
            headers.append(("content-length", str(len(body))))
        headers.extend(extra)
        self.conn.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    def wait(self, sids):
        while not all(self.streams.get(s, {}).get("ended") or s in self.resets for s in sids):
            self.pump()
        return [self.streams.get(s) for s in sids]


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = connect(host, port, mode)
    c = Client(sock, "https" if mode == "tls" else "http")

    [r] = c.wait([c.request("GET", "/mock")])
    print("get status=%s body=%s" % (r["headers"][":status"], r["body"].decode(errors="replace")))

    [r] = c.wait([c.request("POST", "/api/py", body=b"pybody")])
    print("post status=%s body=%s" % (r["headers"][":status"], r["body"].decode(errors="replace")))

    sids = [c.request("GET", "/api/c%d" % i) for i in range(5)]
    rs = c.wait(sids)
    print("concurrent " + " ".join(r["headers"][":status"] for r in rs))

    c.conn.ping(b"pyprobe!")
    c.flush()
    while not c.pings:
        c.pump()
    print("ping ack=%s" % c.pings[0].decode())

    bad = c.request("GET", "/api/bad", extra=[("connection", "close")])
    c.wait([bad])
    print("malformed reset=%s" % c.resets.get(bad))

    [r] = c.wait([c.request("GET", "/mock")])
    print("after status=%s" % r["headers"][":status"])
    sock.close()


if __name__ == "__main__":
    main()

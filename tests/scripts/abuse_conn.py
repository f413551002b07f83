#!/usr/bin/env python3
"""Connection-level attacks on the gateway (tests/abuse_connections.rs), each as a real client:

  stall     an upload that pipelines WRITEs and never reads a reply (its window stays shut)
  channels  one connection opening many session channels, each with an SFTP subsystem
  bigpacket a channel packet larger than the maximum the gateway advertised
  flood     many idle TCP connections from many loopback source addresses
  silent    one TCP connection that never sends a byte

Prints one JSON object per line on stdout ("phase" says which); exit code 0 unless the script
itself broke."""
import argparse
import json
import logging
import os
import resource
import socket
import struct
import sys
import threading
import time

import paramiko

# 290 refused channels would be 290 lines of paramiko's log on the test's stderr.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def out(**kw):
    print(json.dumps(kw), flush=True)


def connect(a, source=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect((a.host, a.port))
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    t.auth_publickey(a.user, paramiko.Ed25519Key.from_private_key_file(a.key))
    return t


def sstr(b):
    return struct.pack(">I", len(b)) + b


def packet(body):
    return struct.pack(">I", len(body)) + body


def recv_exact(ch, n):
    buf = b""
    while len(buf) < n:
        part = ch.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def read_packet(ch):
    head = recv_exact(ch, 4)
    return recv_exact(ch, struct.unpack(">I", head)[0]) if head else None


def sftp_channel(t, window=None):
    # paramiko sends WINDOW_ADJUST only as the application reads: a client that never reads
    # keeps the gateway's replies shut out once this window is used up.
    ch = t.open_session(window_size=window, max_packet_size=32768)
    ch.invoke_subsystem("sftp")
    ch.sendall(packet(bytes([1]) + struct.pack(">I", 3)))
    read_packet(ch)  # VERSION
    return ch


def open_for_write(ch, path):
    ch.sendall(packet(bytes([3]) + struct.pack(">I", 1) + sstr(path.encode())
                      + struct.pack(">II", 0x1A, 0)))  # WRITE|CREAT|TRUNC
    body = read_packet(ch)
    if body is None or body[0] != 102:
        raise RuntimeError(f"OPEN refused: {body!r}")
    (hlen,) = struct.unpack(">I", body[5:9])
    return body[9:9 + hlen]


def stall(a):
    """Pipelines WRITEs to one upload and never reads: reports when the gateway hangs up."""
    t = connect(a)
    ch = sftp_channel(t, window=32768)
    handle = open_for_write(ch, a.path)
    chunk = os.urandom(32 * 1024)
    sent = [0]
    err = [None]

    def pump():
        rid, off = 10, 0
        try:
            while True:
                ch.sendall(packet(bytes([6]) + struct.pack(">I", rid) + sstr(handle)
                                  + struct.pack(">Q", off) + sstr(chunk)))
                rid += 1
                off += len(chunk)
                sent[0] = off
        except Exception as e:  # the gateway hung up: what we wait for
            err[0] = repr(e)

    threading.Thread(target=pump, daemon=True).start()
    out(phase="stalling", path=a.path)
    start = time.monotonic()
    while time.monotonic() - start < a.wait and t.is_active():
        time.sleep(0.1)
    out(phase="end", disconnected=not t.is_active(), sent=sent[0],
        secs=round(time.monotonic() - start, 1), error=err[0])


def channels(a):
    """Opens `count` session channels with SFTP on one connection; closes `reclose` of the
    accepted ones and tries that many again."""
    t = connect(a)
    ok, refused, errors = [], 0, []
    for _ in range(a.count):
        try:
            ok.append(sftp_channel(t))
        except Exception as e:  # noqa: BLE001 - each refusal is what we count
            refused += 1
            if len(errors) < 3:
                errors.append(repr(e))
    # Every accepted channel speaks SFTP: REALPATH "." on each.
    working = 0
    for i, ch in enumerate(ok):
        ch.sendall(packet(bytes([16]) + struct.pack(">I", 100 + i) + sstr(b".")))
        body = read_packet(ch)
        working += body is not None and body[0] == 104
    out(phase="opened", accepted=len(ok), refused=refused, working=working, errors=errors,
        alive=t.is_active())
    for ch in ok[:a.reclose]:
        ch.close()
    time.sleep(0.5)
    again = 0
    for _ in range(a.reclose):
        try:
            sftp_channel(t)
            again += 1
        except Exception:  # noqa: BLE001
            pass
    out(phase="end", reopened=again, alive=t.is_active())
    t.close()


def bigpacket(a):
    """Sends one channel packet of `count` bytes, over the 32 KiB the gateway advertised."""
    t = connect(a)
    ch = sftp_channel(t)
    advertised = ch.out_max_packet_size
    ch.out_max_packet_size = a.count + 64  # what a careless or hostile client does
    sent = ch.send(b"\0" * a.count)
    start = time.monotonic()
    while time.monotonic() - start < a.wait and t.is_active():
        time.sleep(0.1)
    out(phase="end", advertised=advertised, sent=sent, disconnected=not t.is_active())


def flood(a):
    """Holds `count` idle TCP connections spread over `sources` loopback addresses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 256
    if soft < want:
        try:  # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks, failed = [], 0
    for i in range(a.count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            failed += 1
            continue
        try:
            s.setblocking(False)
            s.bind((f"127.0.{1 + i % a.sources // 250}.{2 + i % a.sources % 250}", 0))
            s.connect_ex((a.host, a.port))
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    out(phase="ready", opened=len(socks), failed=failed)
    time.sleep(a.wait)
    for s in socks:
        s.close()
    out(phase="end")


def silent(a):
    """Connects, reads the gateway's version line, sends nothing; reports when it is closed."""
    s = socket.create_connection((a.host, a.port), timeout=a.wait)
    start = time.monotonic()
    banner = b""
    closed = False
    try:
        while True:
            part = s.recv(4096)
            if not part:
                closed = True
                break
            banner += part
    except (socket.timeout, ConnectionResetError) as e:
        closed = isinstance(e, ConnectionResetError)
    out(phase="end", closed=closed, banner=banner.decode(errors="replace").strip(),
        secs=round(time.monotonic() - start, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["stall", "channels", "bigpacket", "flood", "silent"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="alice")
    p.add_argument("--key")
    p.add_argument("--path", default="/stalled.bin")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--reclose", type=int, default=5)
    p.add_argument("--sources", type=int, default=40)
    p.add_argument("--wait", type=float, default=30)
    a = p.parse_args()
    {"stall": stall, "channels": channels, "bigpacket": bigpacket, "flood": flood,
     "silent": silent}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

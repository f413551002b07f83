#!/usr/bin/env python3
"""The memory and handle attacks of issue 13, spoken as raw SFTP on paramiko channels (to send
what no client library sends, and fast: requests are pipelined, replies read afterwards).

Commands (all print JSON; those that hold print {"holding": ...} first, then wait for the file
--gate to exist before they close everything and print their result):
  one-byte-gaps   OPEN --path, --count one-byte WRITEs at offsets 1, 3, 5, ... (the byte at 0
                  never comes), then CLOSE.
  held-flood      --channels SFTP channels on one connection, --uploads uploads on each, every
                  upload --count WRITEs of --size bytes past a gap at offset 0; holds.
  handle-flood    --sessions connections, each opening uploads in turn until --count OPENs were
                  sent in all; holds.
  readdir-pages   OPENDIR --path and READDIR until EOF: entries and bytes of every reply.
  listdir         paramiko's listdir of --path: the number of names.
"""
import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sftp_client import connect  # noqa: E402


def sstr(b):
    return struct.pack(">I", len(b)) + b


def packet(body):
    return struct.pack(">I", len(body)) + body


class Channel:
    """One SFTP channel on an existing transport."""

    def __init__(self, transport):
        self.ch = transport.open_session()
        self.ch.settimeout(60)  # a gateway that stops answering fails the attack, not hangs it
        self.ch.invoke_subsystem("sftp")
        self.ch.sendall(packet(bytes([1]) + struct.pack(">I", 3)))  # INIT v3
        self.read_packet()  # VERSION
        self.rid = 0

    def next_id(self):
        self.rid += 1
        return self.rid

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            part = self.ch.recv(n - len(buf))
            if not part:
                raise EOFError("channel closed")
            buf += part
        return buf

    def read_packet(self):
        (n,) = struct.unpack(">I", self.recv_exact(4))
        return self.recv_exact(n)

    def reply(self):
        body = self.read_packet()
        kind, rid = body[0], struct.unpack(">I", body[1:5])[0]
        out = {"id": rid, "type": kind, "len": len(body) + 4}
        if kind == 101:  # STATUS
            out["status"] = struct.unpack(">I", body[5:9])[0]
            (mlen,) = struct.unpack(">I", body[9:13])
            out["message"] = body[13:13 + mlen].decode()
        elif kind == 102:  # HANDLE
            (hlen,) = struct.unpack(">I", body[5:9])
            out["handle"] = body[9:9 + hlen]
        elif kind == 104:  # NAME
            out["count"] = struct.unpack(">I", body[5:9])[0]
        return out

    def send_open(self, path, pflags=0x1A):
        self.ch.sendall(packet(bytes([3]) + struct.pack(">I", self.next_id()) + sstr(path.encode())
                               + struct.pack(">II", pflags, 0)))

    def send_write(self, handle, offset, data):
        self.ch.sendall(packet(bytes([6]) + struct.pack(">I", self.next_id()) + sstr(handle)
                               + struct.pack(">QI", offset, len(data)) + data))

    def send_close(self, handle):
        self.ch.sendall(packet(bytes([4]) + struct.pack(">I", self.next_id()) + sstr(handle)))

    def send_opendir(self, path):
        self.ch.sendall(packet(bytes([11]) + struct.pack(">I", self.next_id()) + sstr(path.encode())))

    def send_readdir(self, handle):
        self.ch.sendall(packet(bytes([12]) + struct.pack(">I", self.next_id()) + sstr(handle)))


def summary(replies):
    """OK count, and each distinct refusal message with how often it came."""
    ok = sum(1 for r in replies if r.get("status") == 0 or "handle" in r)
    refusals = {}
    for r in replies:
        if r.get("status") not in (None, 0):
            refusals[r["message"]] = refusals.get(r["message"], 0) + 1
    return {"ok": ok, "refusals": refusals}


def hold(a, what):
    print(json.dumps({"holding": what}), flush=True)
    deadline = time.monotonic() + 120  # never outlive a test that forgot to release
    while not os.path.exists(a.gate) and time.monotonic() < deadline:
        time.sleep(0.05)


def one_byte_gaps(a):
    t, _ = connect(a)
    c = Channel(t)
    c.send_open(a.path)
    handle = c.reply()["handle"]
    for i in range(a.count):
        c.send_write(handle, 1 + 2 * i, b"x")
    writes = [c.reply() for _ in range(a.count)]
    first_refused = next((i for i, w in enumerate(writes) if w["status"] != 0), None)
    c.send_close(handle)
    close = c.reply()
    t.close()
    return {"accepted": first_refused if first_refused is not None else a.count,
            "first_refusal": writes[first_refused]["message"] if first_refused is not None else None,
            "close": close}


def held_flood(a):
    t, _ = connect(a)
    channels = [Channel(t) for _ in range(a.channels)]
    handles = []
    for n, c in enumerate(channels):
        for u in range(a.uploads):
            c.send_open("/held-%d-%d.bin" % (n, u))
        handles.append([c.reply()["handle"] for _ in range(a.uploads)])
    chunk = b"h" * a.size
    replies = []
    # Every upload writes past its gap; channels take turns so they fill together.
    for i in range(a.count):
        for c, hs in zip(channels, handles):
            for h in hs:
                c.send_write(h, a.size * (i + 1), chunk)
        for c, hs in zip(channels, handles):
            replies.extend(c.reply() for _ in hs)
    hold(a, summary(replies))
    closes = []
    for c, hs in zip(channels, handles):
        for h in hs:
            c.send_close(h)
        closes.extend(c.reply() for _ in hs)
    t.close()
    return {"writes": summary(replies), "closes": summary(closes)}


def handle_flood(a):
    sessions = [connect(a)[0] for _ in range(a.sessions)]
    channels = [Channel(t) for t in sessions]
    opened = []
    for i in range(a.count):
        c = channels[i % len(channels)]
        c.send_open("/flood-%d.bin" % i)
        r = c.reply()
        opened.append(r)
    hold(a, summary(opened))
    for t in sessions:
        t.close()  # without CLOSE: the gateway must give the slots back itself
    return {"opens": summary(opened)}


def readdir_pages(a):
    t, _ = connect(a)
    c = Channel(t)
    c.send_opendir(a.path)
    handle = c.reply()["handle"]
    pages = []
    while True:
        c.send_readdir(handle)
        r = c.reply()
        if r["type"] != 104:
            end = r
            break
        pages.append({"entries": r["count"], "bytes": r["len"]})
    c.send_close(handle)
    c.reply()
    t.close()
    return {"pages": pages, "end": end}


def listdir(a):
    t, s = connect(a)
    names = s.listdir(a.path)
    t.close()
    return {"names": len(names)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--path", default="/file.bin")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--size", type=int, default=32 * 1024)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--uploads", type=int, default=1)
    p.add_argument("--sessions", type=int, default=2)
    p.add_argument("--gate", default="")
    a = p.parse_args()
    a.password = None
    commands = {"one-byte-gaps": one_byte_gaps, "held-flood": held_flood,
                "handle-flood": handle_flood, "readdir-pages": readdir_pages, "listdir": listdir}
    try:
        out = {"ok": True, **commands[a.cmd](a)}
    except Exception as e:  # noqa: BLE001 - report, the Rust test decides
        out = {"ok": False, "error": repr(e)}
    print(json.dumps(out, default=lambda b: b.decode(errors="replace")), flush=True)


if __name__ == "__main__":
    main()

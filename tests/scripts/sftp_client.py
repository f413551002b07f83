#!/usr/bin/env python3
"""Scripted SFTP client (paramiko) for the edge cases OpenSSH's sftp cannot express:
out-of-order writes, reorder-window overflow, disconnect mid-upload, password login,
exclusive create, append, session limits, ranged reads and uploads paused mid-way.

Prints one JSON object on stdout; exit code 0 unless the script itself broke."""
import argparse
import json
import os
import socket
import sys

import paramiko


def connect(a, password=None):
    sock = socket.create_connection((a.host, a.port), timeout=30)
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    if password is not None:
        t.auth_password(a.user, password)
    else:
        key = paramiko.Ed25519Key.from_private_key_file(a.key)
        t.auth_publickey(a.user, key)
    return t, paramiko.SFTPClient.from_transport(t)


def err(e):
    return {"ok": False, "error": str(e), "type": type(e).__name__}


class RawSftp:
    """SFTP spoken by hand on a raw channel, to send what no client library sends and to see
    every reply exactly as the server wrote it."""

    def __init__(self, a, max_packet=None):
        import struct
        self.struct = struct
        self.t, _ = connect(a, a.password)
        self.ch = self.t.open_session(max_packet_size=max_packet)
        self.ch.invoke_subsystem("sftp")
        self.send(bytes([1]) + struct.pack(">I", 3))  # INIT v3
        head = self.recv_exact(4)
        self.recv_exact(struct.unpack(">I", head)[0])  # VERSION

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            part = self.ch.recv(n - len(buf))
            if not part:
                return None
            buf += part
        return buf

    def reply(self):
        st = self.struct
        head = self.recv_exact(4)
        if head is None:
            return None
        (n,) = st.unpack(">I", head)
        body = self.recv_exact(n)
        kind, rid = body[0], st.unpack(">I", body[1:5])[0]
        if kind == 101:  # STATUS: code, message
            code = st.unpack(">I", body[5:9])[0]
            (mlen,) = st.unpack(">I", body[9:13])
            return {"id": rid, "status": code, "message": body[13 : 13 + mlen].decode()}
        if kind == 102:  # HANDLE
            (hlen,) = st.unpack(">I", body[5:9])
            return {"id": rid, "handle": body[9 : 9 + hlen].decode()}
        return {"id": rid, "type": kind}

    @staticmethod
    def sstr(b):
        import struct
        return struct.pack(">I", len(b)) + b

    @staticmethod
    def packet(body):
        import struct
        return struct.pack(">I", len(body)) + body

    def send(self, body):
        self.ch.sendall(self.packet(body))

    def write_packet(self, rid, handle, offset, data, claimed=None):
        st = self.struct
        n = len(data) if claimed is None else claimed
        return self.packet(bytes([6]) + st.pack(">I", rid) + self.sstr(handle)
                           + st.pack(">Q", offset) + st.pack(">I", n) + data)

    def open(self, rid, path, pflags):
        self.send(bytes([3]) + self.struct.pack(">I", rid) + self.sstr(path.encode())
                  + self.struct.pack(">II", pflags, 0))
        return self.reply()

    def write(self, rid, handle, offset, data):
        self.ch.sendall(self.write_packet(rid, handle, offset, data))
        return self.reply()

    def close(self, rid, handle):
        self.send(bytes([4]) + self.struct.pack(">I", rid) + self.sstr(handle))
        return self.reply()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key")
    p.add_argument("--password")
    p.add_argument("--path", default="/file.bin")
    p.add_argument("--local")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--after", type=int, default=1)
    p.add_argument("--flags", type=lambda v: int(v, 0), default=0x1A,
                   help="OPEN pflags (default WRITE|CREAT|TRUNC)")
    p.add_argument("--gate", help="gated-upload: the file whose appearance resumes the upload")
    a = p.parse_args()
    out = {}
    try:
        if a.cmd == "login":
            t, s = connect(a, a.password)
            out = {"ok": True, "listing": sorted(s.listdir("/"))}
            t.close()
        elif a.cmd == "hold":
            # Logs in, says so, and holds the session until stdin closes.
            t, s = connect(a, a.password)
            s.listdir("/")
            print(json.dumps({"ok": True}), flush=True)
            sys.stdin.read()
            out = {"ok": True}
            t.close()
        elif a.cmd == "idle":
            # Works, stays silent for --count seconds, then tries again.
            t, s = connect(a, a.password)
            first = sorted(s.listdir("/"))
            import time as clock  # `time` is a local name elsewhere in main()
            clock.sleep(a.count)
            try:
                s.listdir("/")
                second_ok = True
            except Exception:
                second_ok = False
            out = {"ok": True, "first": first, "second_ok": second_ok}
            t.close()
        elif a.cmd == "ooo-upload":
            # Chunks written in a shuffled order inside the window, then closed.
            data = open(a.local, "rb").read()
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            size = 32 * 1024
            chunks = [(o, data[o:o + size]) for o in range(0, len(data), size)]
            order = []
            for i in range(0, len(chunks), 4):
                order.extend(reversed(chunks[i:i + 4]))
            for o, c in order:
                f.seek(o)
                f.write(c)
            f.close()
            out = {"ok": True, "written": len(data)}
            t.close()
        elif a.cmd == "window-overflow":
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            f.write(b"x" * 1024)
            f.seek(a.offset)
            try:
                f.write(b"y" * 1024)
                f.close()
                out = {"ok": True}
            except IOError as e:
                out = err(e)
                # Then CLOSE, as real clients do; SFTPFile.close() would swallow its status.
                f._closed = True
                try:
                    s._request(paramiko.sftp.CMD_CLOSE, f.handle)
                    out["close"] = "ok"
                except IOError as ce:
                    out["close"] = str(ce)
            t.close()
        elif a.cmd == "disconnect-mid-upload":
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            f.write(os.urandom(300 * 1024))
            # Wait for the server to acknowledge (the data reached it), then drop the connection.
            s.stat("/")
            t.sock.close()
            t.close()
            out = {"ok": True}
        elif a.cmd == "raw-packets":
            # Speaks SFTP by hand on a raw channel, to send what no client library sends:
            # an unknown request type, malformed WRITEs, a WRITE split across channel packets
            # at odd places, and finally a packet length beyond the limit. Reports each reply.
            import struct
            raw = RawSftp(a)
            t, ch, reply, sstr, packet = raw.t, raw.ch, raw.reply, raw.sstr, raw.packet
            write = raw.write_packet
            res = {}
            ch.sendall(packet(bytes([99]) + struct.pack(">I", 5)))
            res["unknown_type"] = reply()
            ch.sendall(write(6, b"h1", 0, b"abc", claimed=10))
            res["bad_length"] = reply()
            ch.sendall(write(7, b"nosuch", 0, b"abc"))
            res["unknown_handle"] = reply()
            # OPEN (WRITE|CREAT|TRUNC), then two WRITEs sent one byte at a time, then CLOSE.
            ch.sendall(packet(bytes([3]) + struct.pack(">I", 8) + sstr(a.path.encode())
                              + struct.pack(">II", 0x1A, 0)))
            handle = reply()["handle"].encode()
            payload = b"".join(bytes([i % 251]) for i in range(70000))
            wire = write(9, handle, 0, payload[:40000]) + write(10, handle, 40000, payload[40000:])
            for i in range(0, len(wire), 997):
                ch.sendall(wire[i : i + 997])
            res["write1"] = reply()
            res["write2"] = reply()
            ch.sendall(packet(bytes([4]) + struct.pack(">I", 11) + sstr(handle)))
            res["close"] = reply()
            # A length no SFTP packet may have: the server closes the channel.
            ch.sendall(struct.pack(">I", 0x7FFFFFFF) + b"\x06")
            res["after_oversized"] = reply()
            t.close()
            out = {"ok": True, **res}
        elif a.cmd == "refused-write-close":
            # What OpenSSH's sftp and most clients do after a refused WRITE: go on to CLOSE.
            # OPEN --path with --flags; write --count bytes at offset 0 (0: none); then, unless
            # --offset is negative, a WRITE of 1 KiB at --offset (expected to be refused); CLOSE.
            raw = RawSftp(a)
            opened = raw.open(1, a.path, a.flags)
            res = {"open": opened}
            if "handle" in opened:
                h = opened["handle"].encode()
                if a.count > 0:
                    res["first"] = raw.write(2, h, 0, bytes(i % 253 for i in range(a.count)))
                if a.offset >= 0:
                    res["refused"] = raw.write(3, h, a.offset, b"x" * 1024)
                    res["after"] = raw.write(4, h, a.count, b"y" * 16)
                res["close"] = raw.close(5, h)
            raw.t.close()
            out = {"ok": True, **res}
        elif a.cmd == "put-pause":
            # Writes --count MiB (seeded bytes, so the test can recompute them), creates the file
            # --local + ".paused", waits for --local + ".go", writes --after more MiB (default 1)
            # and closes.
            # Reports whether CLOSE succeeded: the test breaks things in between.
            import random
            import time
            rng = random.Random(7)
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            f.set_pipelined(True)
            for _ in range(a.count):
                f.write(rng.randbytes(1 << 20))
            # Wait until the server acknowledged every write (the data reached it). Not with
            # another request such as stat: paramiko would consume the pending write replies
            # while waiting for it and later wait forever for replies it already read.
            while f._reqs:
                s._read_response(f._reqs.popleft())
            open(a.local + ".paused", "w").close()
            while not os.path.exists(a.local + ".go"):
                # A test that failed before letting us go has removed its directory: do not
                # wait for ever.
                if not os.path.isdir(os.path.dirname(os.path.abspath(a.local))):
                    sys.exit(3)
                time.sleep(0.05)
            try:
                for _ in range(a.after):
                    f.write(rng.randbytes(1 << 20))
                f.flush()
                # SFTPFile.close() swallows a failed CLOSE; ask directly to see the status.
                f._closed = True
                s._request(paramiko.sftp.CMD_CLOSE, f.handle)
                out = {"ok": True}
            except Exception as e:
                out = err(e)
            try:
                t.close()
            except Exception:
                pass
        elif a.cmd == "put":
            # A plain pipelined upload of --local to --path; reports whether CLOSE succeeded
            # (SFTPFile.close() would swallow a failed CLOSE, so it is asked for directly).
            data = open(a.local, "rb").read()
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            f.set_pipelined(True)
            for o in range(0, len(data), 1 << 20):
                f.write(data[o:o + (1 << 20)])
            f.flush()
            f._closed = True
            s._request(paramiko.sftp.CMD_CLOSE, f.handle)
            out = {"ok": True, "written": len(data)}
            t.close()
        elif a.cmd == "hold-upload":
            # Starts an upload and keeps the connection open without closing the file.
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            f.write(os.urandom(300 * 1024))
            s.stat("/")
            print(json.dumps({"ok": True, "holding": True}), flush=True)
            import time
            time.sleep(a.count)
            t.close()
            return
        elif a.cmd == "gated-upload":
            # Uploads the first half of --local, waits until the file --gate exists, then
            # writes the rest and closes: a slow upload whose pace the test controls.
            data = open(a.local, "rb").read()
            t, s = connect(a, a.password)
            f = s.open(a.path, "wb")
            half = len(data) // 2
            f.write(data[:half])
            s.stat("/")
            print(json.dumps({"ok": True, "holding": True}), flush=True)
            import time as clock
            while not os.path.exists(a.gate):
                clock.sleep(0.05)
            f.write(data[half:])
            f.close()
            out = {"ok": True, "written": len(data)}
            t.close()
        elif a.cmd in ("exclusive", "append", "readwrite"):
            t, s = connect(a, a.password)
            mode = {"exclusive": "wxb", "append": "ab", "readwrite": "r+b"}[a.cmd]
            try:
                f = s.open(a.path, mode)
                f.write(b"data")
                f.close()
                out = {"ok": True}
            except IOError as e:
                out = err(e)
            t.close()
        elif a.cmd == "sessions":
            conns, results = [], []
            for _ in range(a.count):
                try:
                    conns.append(connect(a, a.password))
                    results.append(True)
                except Exception as e:  # noqa: BLE001 - the failure is the result
                    results.append(str(e))
            for t, _s in conns:
                t.close()
            out = {"ok": True, "results": results}
        elif a.cmd == "read-at":
            t, s = connect(a, a.password)
            f = s.open(a.path, "rb")
            f.seek(a.offset)
            data = f.read(a.count)
            f.close()
            sys.stdout.buffer.write(data)
            t.close()
            return
        elif a.cmd == "pipelined-reads":
            # All READs of a file sent before any reply is read, in sizes that are no multiple
            # of anything, on a channel whose packets are at most --count bytes: DATA replies
            # straddle packets. Writes the replies' data, in request order, to stdout; exits 1
            # naming the first reply that is not the DATA or EOF expected.
            raw = RawSftp(a, max_packet=a.count)
            st = raw.struct
            h = raw.open(1, a.path, 0x01)["handle"].encode()
            sizes = [32768, 1, 65536, 20000, 13, 32755, 4096, 65535, 7]
            reqs, off, rid = [], 0, 100
            while off <= a.offset:  # --offset: the file's length; one READ past the end
                n = sizes[len(reqs) % len(sizes)]
                reqs.append((rid, off, n))
                off, rid = off + n, rid + 1
            raw.ch.sendall(b"".join(
                raw.packet(bytes([5]) + st.pack(">I", i) + raw.sstr(h) + st.pack(">QI", o, n))
                for i, o, n in reqs))
            out = []
            for i, o, n in reqs:
                (ln,) = st.unpack(">I", raw.recv_exact(4))
                body = raw.recv_exact(ln)
                kind, got = body[0], st.unpack(">I", body[1:5])[0]
                want_eof = o >= a.offset
                if got != i or kind != (101 if want_eof else 103):
                    print(f"request {i} at {o}: reply type {kind} for id {got}", file=sys.stderr)
                    sys.exit(1)
                if kind == 103:
                    (dl,) = st.unpack(">I", body[5:9])
                    if dl != min(n, a.offset - o) or len(body) != 9 + dl:
                        print(f"request {i} at {o}: {dl} bytes for {n}", file=sys.stderr)
                        sys.exit(1)
                    out.append(body[9:])
            raw.close(2, h)
            sys.stdout.buffer.write(b"".join(out))
            raw.t.close()
            return
        elif a.cmd == "symlink":
            t, s = connect(a, a.password)
            try:
                s.symlink("/a", "/b")
                out = {"ok": True}
            except IOError as e:
                out = err(e)
            t.close()
        elif a.cmd == "trailing-bytes":
            # Raw SFTP where every request carries bytes after its last field, as pkg/sftp
            # (rclone) sends WRITEs: OpenSSH's sftp-server skips them. Uploads --local to --path
            # (WRITEs of 32 KiB data in packets 8 KiB longer), then STATs it. Reports each reply.
            import struct
            data = open(a.local, "rb").read()
            junk = bytes([0xEE]) * 8192
            t, _ = connect(a, a.password)
            ch = t.open_session()
            ch.invoke_subsystem("sftp")

            def recv_exact(n):
                buf = b""
                while len(buf) < n:
                    part = ch.recv(n - len(buf))
                    if not part:
                        return None
                    buf += part
                return buf

            def reply():
                head = recv_exact(4)
                if head is None:
                    return None
                body = recv_exact(struct.unpack(">I", head)[0])
                kind = body[0]
                if kind == 2:  # VERSION
                    return {"version": struct.unpack(">I", body[1:5])[0]}
                rid = struct.unpack(">I", body[1:5])[0]
                if kind == 101:  # STATUS: code, message
                    code = struct.unpack(">I", body[5:9])[0]
                    (mlen,) = struct.unpack(">I", body[9:13])
                    return {"id": rid, "status": code, "message": body[13:13 + mlen].decode()}
                if kind == 102:  # HANDLE
                    (hlen,) = struct.unpack(">I", body[5:9])
                    return {"id": rid, "handle": body[9:9 + hlen].decode()}
                if kind == 105:  # ATTRS: flags, then size if flag 1
                    (flags,) = struct.unpack(">I", body[5:9])
                    size = struct.unpack(">Q", body[9:17])[0] if flags & 1 else None
                    return {"id": rid, "size": size}
                return {"id": rid, "type": kind}

            def sstr(b):
                return struct.pack(">I", len(b)) + b

            def packet(body, trailing=b""):
                return struct.pack(">I", len(body) + len(trailing)) + body + trailing

            res = {}
            ch.sendall(packet(bytes([1]) + struct.pack(">I", 3), junk[:3]))  # INIT v3
            res["init"] = reply()
            # OPEN (WRITE|CREAT|TRUNC) with empty attrs.
            ch.sendall(packet(bytes([3]) + struct.pack(">I", 1) + sstr(a.path.encode())
                              + struct.pack(">II", 0x1A, 0), junk[:5]))
            res["open"] = reply()
            handle = res["open"]["handle"].encode()
            size = 32 * 1024
            chunks = list(range(0, len(data), size))
            for n, o in enumerate(chunks):
                piece = data[o:o + size]
                ch.sendall(packet(bytes([6]) + struct.pack(">I", 100 + n) + sstr(handle)
                                  + struct.pack(">QI", o, len(piece)) + piece, junk))
            writes = [reply() for _ in chunks]
            res["writes_ok"] = sum(1 for w in writes if w and w.get("status") == 0)
            res["writes"] = len(chunks)
            res["bad_write"] = next((w for w in writes if not w or w.get("status") != 0), None)
            ch.sendall(packet(bytes([4]) + struct.pack(">I", 2) + sstr(handle), junk[:7]))
            res["close"] = reply()
            ch.sendall(packet(bytes([17]) + struct.pack(">I", 3) + sstr(a.path.encode()), junk[:1]))
            res["stat"] = reply()
            # A data length larger than the packet holds stays a BAD_MESSAGE (no handle needed).
            ch.sendall(packet(bytes([6]) + struct.pack(">I", 4) + sstr(b"nosuch")
                              + struct.pack(">QI", 0, 10) + b"abc"))
            res["overlong_write"] = reply()
            t.close()
            out = {"ok": True, **res}
        else:
            out = {"ok": False, "error": "unknown command " + a.cmd}
    except paramiko.AuthenticationException as e:
        out = {"ok": False, "auth_failed": True, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - report, the Rust test decides
        out = err(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

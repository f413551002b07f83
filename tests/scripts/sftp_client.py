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
    p.add_argument("--gate", help="gated-upload: the file whose appearance resumes the upload")
    a = p.parse_args()
    out = {}
    try:
        if a.cmd == "login":
            t, s = connect(a, a.password)
            out = {"ok": True, "listing": sorted(s.listdir("/"))}
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
        elif a.cmd == "symlink":
            t, s = connect(a, a.password)
            try:
                s.symlink("/a", "/b")
                out = {"ok": True}
            except IOError as e:
                out = err(e)
            t.close()
        else:
            out = {"ok": False, "error": "unknown command " + a.cmd}
    except paramiko.AuthenticationException as e:
        out = {"ok": False, "auth_failed": True, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - report, the Rust test decides
        out = err(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Two SFTP clients (paramiko, two connections) race renames onto one new name, --rounds
times: each round both upload their own source file, then rename it onto `t<round>` at the
same moment (a barrier). Reports per round who succeeded, what the target holds, and what each
source holds afterwards (None: gone). Prints one JSON object; exit code 0 unless the script
itself broke."""
import argparse
import json
import socket
import threading

import paramiko


def connect(a):
    sock = socket.create_connection((a.host, a.port), timeout=30)
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    t.auth_publickey(a.user, paramiko.Ed25519Key.from_private_key_file(a.key))
    return t, paramiko.SFTPClient.from_transport(t)


def read(s, path):
    try:
        with s.open(path, "rb") as f:
            return f.read().decode()
    except IOError:
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--rounds", type=int, default=50)
    a = p.parse_args()
    clients = [connect(a), connect(a)]
    rounds = []
    for r in range(a.rounds):
        for i, (_, s) in enumerate(clients):
            with s.open("/s%d-%d" % (r, i), "wb") as f:
                f.write(("%d-%d" % (r, i)).encode())
        barrier = threading.Barrier(2)
        result = [None, None]

        def race(i):
            s = clients[i][1]
            barrier.wait()
            try:
                s.rename("/s%d-%d" % (r, i), "/t%d" % r)
                result[i] = "ok"
            except IOError as e:
                result[i] = str(e)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s = clients[0][1]
        rounds.append({
            "results": result,
            "target": read(s, "/t%d" % r),
            "sources": [read(s, "/s%d-%d" % (r, i)) for i in range(2)],
        })
    for t, _ in clients:
        t.close()
    print(json.dumps({"ok": True, "rounds": rounds}))


if __name__ == "__main__":
    main()

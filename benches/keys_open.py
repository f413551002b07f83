#!/usr/bin/env python3
"""What a key provider adds to an upload, end to end: `eugate serve` with one keyring tenant
(the baseline: no provider call) and one hold-your-own-key tenant per provider section in the
given gateway.toml, each uploading small files over SFTP (paramiko), interleaved round by round
so that the machine's noise falls on all alike. Reports per tenant the median and p90 of the
OPEN round trip (where a HYOK tenant's provider wraps the object key) and of the whole
open-write-close, and their ratio to the keyring tenant measured in the same run.

Usage: keys_open.py EUGATE_BIN DIR N   (DIR holds gateway.toml with [key_providers.*], the
keyring and its master key, as benches/keys.sh leaves them)"""

import os
import re
import socket
import statistics
import subprocess
import sys
import time

import paramiko


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"eugate exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit("eugate did not listen")


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    eug, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    base = open(os.path.join(d, "gateway.toml")).read()
    providers = re.findall(r"^\[key_providers\.([A-Za-z0-9_-]+)\]", base, re.M)
    port = free_port()
    base = base.replace('listen = ["127.0.0.1:0"]', f'listen = ["127.0.0.1:{port}"]')
    keygen(os.path.join(d, "host"))
    store = os.path.join(d, "store")
    os.makedirs(store, exist_ok=True)
    tenants = [("keyring", None)] + [(f"hyok-{p}", p) for p in providers]
    users = os.path.join(d, "users")
    os.makedirs(users, exist_ok=True)
    conf = [base, f'\n[destinations.local]\nkind = "fs"\nroot = "{store}"\ncountry = "DE"\n']
    for tenant, provider in tenants:
        keygen(os.path.join(users, tenant))
        conf.append(f'\n[tenants.{tenant}]\nroute = {{ destination = "local", prefix = "{tenant}/" }}\n'
                    'classification = "personal"\n')
        if provider:
            conf.append(f'key_provider = "{provider}"\n')
        conf.append(f'[tenants.{tenant}.users.{tenant}]\nauthorized_keys_file = "users/{tenant}.pub"\n'
                    'permissions = ["read", "write", "delete"]\n')
    path = os.path.join(d, "serve.toml")
    with open(path, "w") as f:
        f.write("".join(conf))
    subprocess.run([eug, "keys", "--config", path, "add-tenant", "keyring"], check=True,
                   capture_output=True)
    env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1")
    with open(os.path.join(d, "serve.log"), "w") as log:
        proc = subprocess.Popen([eug, "serve", "--config", path], cwd=d, env=env, stderr=log)
    try:
        wait_port(port, proc)
        sessions = {}
        for tenant, _ in tenants:
            t = paramiko.Transport(("127.0.0.1", port))
            t.connect(username=tenant,
                      pkey=paramiko.Ed25519Key.from_private_key_file(os.path.join(users, tenant)))
            sessions[tenant] = (t, paramiko.SFTPClient.from_transport(t))
        body = os.urandom(4096)
        opens = {t: [] for t, _ in tenants}
        totals = {t: [] for t, _ in tenants}
        for i in range(n + 5):
            order = tenants[i % len(tenants):] + tenants[:i % len(tenants)]
            for tenant, _ in order:
                sftp = sessions[tenant][1]
                t0 = time.perf_counter()
                f = sftp.open(f"f{i}.bin", "wb")
                t1 = time.perf_counter()
                f.write(body)
                f.close()
                t2 = time.perf_counter()
                if i >= 5:  # the first rounds warm connections and caches up
                    opens[tenant].append((t1 - t0) * 1000)
                    totals[tenant].append((t2 - t0) * 1000)
        for t, s in sessions.values():
            s.close()
            t.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    base_open = statistics.median(opens["keyring"])
    base_total = statistics.median(totals["keyring"])
    print(f"== end to end: {n} uploads of 4 KiB per tenant over SFTP, interleaved; "
          "medians (p90) in ms, ratio to the keyring tenant")
    for tenant, _ in tenants:
        o, a = statistics.median(opens[tenant]), statistics.median(totals[tenant])
        print(f"{tenant:<16} OPEN {o:6.2f} ({pct(opens[tenant], 0.9):6.2f}) x{o / base_open:5.2f}"
              f"   open+write+close {a:6.2f} ({pct(totals[tenant], 0.9):6.2f}) x{a / base_total:5.2f}"
              f"   OPEN added {o - base_open:+.2f}")


if __name__ == "__main__":
    main()

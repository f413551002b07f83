#!/usr/bin/env python3
"""Listing benchmark: how long an SFTP `readdir` of a directory of N objects takes, eugate vs
`rclone serve sftp` over crypt, both on the same Garage (behind TLS, as in benches/e2e.py, whose
setup this reuses). GUI clients (WinSCP, FileZilla) list constantly, so this is what a partner with
many files notices first.

Each peer's directory is filled with N small files over SFTP (paramiko, pipelined), then listed
--runs times with paramiko's `listdir_attr` (OPENDIR, READDIR until EOF, CLOSE), the peers
interleaved run by run. The first listing of each peer is reported apart ("cold": rclone caches
directory listings, eugate does not; rclone is restarted after the fill so that its first listing
is cold too). Every listing must return exactly N entries with the
plaintext sizes that were written, or the run fails. Reported: seconds per listing (median of
the warm runs, and the cold one), per 1,000 entries, and eugate's ratio to rclone-crypt.

Started by benches/list.sh (installs and builds what is missing). Usage:
  benches/list.sh [--files 10000] [--runs 5] [--size 1000] [--legacy-objects] [--only-eugate]
"""
import argparse
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import paramiko

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402  (the benchmark harness: Garage, TLS, eugate and rclone peers)


def connect(peer):
    t = paramiko.Transport(("127.0.0.1", peer.port))
    t.connect(username=peer.user, pkey=paramiko.Ed25519Key.from_private_key_file(peer.key))
    return t, paramiko.SFTPClient.from_transport(t)


def fill(peer, files, size, workers=8):
    """Writes `files` files of `size` bytes into <peer>/list/, `workers` connections at once."""
    body = os.urandom(size)
    t, s = connect(peer)
    s.mkdir(peer.remote("list"))
    t.close()

    def part(k):
        t, s = connect(peer)
        try:
            for i in range(k, files, workers):
                with s.open(peer.remote(f"list/f{i:06d}.bin"), "wb") as f:
                    f.write(body)
        finally:
            t.close()

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(part, range(workers)))


def listing(peer, files, size):
    t, s = connect(peer)
    try:
        t0 = time.perf_counter()
        entries = s.listdir_attr(peer.remote("list"))
        took = time.perf_counter() - t0
    finally:
        t.close()
    names = [e.filename for e in entries if e.filename not in (".", "..")]
    wrong = [e.filename for e in entries if e.filename in names and e.st_size != size]
    if len(names) != files or wrong:
        raise RuntimeError(f"{peer.name}: listed {len(names)} of {files} entries, "
                           f"{len(wrong)} with a size other than {size} (e.g. {wrong[:3]})")
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5, help="listings per peer (the first is the cold one)")
    ap.add_argument("--size", type=int, default=1000, help="bytes per file")
    ap.add_argument("--s3-plain-http", action="store_true")
    ap.add_argument("--eugate", default=os.path.join(e2e.REPO, "target", "release", "eugate"))
    ap.add_argument("--garage", default=os.environ.get("GARAGE", "/opt/eugate-tools/bin/garage"))
    ap.add_argument("--eugate-toml", default="")
    ap.add_argument("--legacy-objects", action="store_true",
                    help="eugate with [storage] legacy_objects = true: one header read per file, as "
                         "for a store that may hold objects of format versions 1 and 2; by default the "
                         "store is new (version 3 only) and sizes come from the listed lengths")
    ap.add_argument("--only-eugate", action="store_true", help="no rclone peer (e.g. for --files 100000)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    # What e2e.Bench reads from its arguments; the rest of its options do not apply here.
    a.eugate_dest, a.concurrent, a.rss_concurrent = "s3", 1, 1
    a.eugate, a.garage = os.path.abspath(a.eugate), os.path.abspath(a.garage)
    a.eugate_toml = (f"[storage]\nlegacy_objects = {'true' if a.legacy_objects else 'false'}\n"
                     + a.eugate_toml)
    b = e2e.Bench(a)
    signal.signal(signal.SIGTERM, lambda n, f: (_ for _ in ()).throw(KeyboardInterrupt(f"signal {n}")))
    try:
        b.start_garage()
        if not a.s3_plain_http:
            b.start_tls()
        spawned = {}
        spawn = b.spawn

        def recording_spawn(name, argv, env=None, cwd=None):
            spawned[name] = (argv, env, cwd)
            return spawn(name, argv, env=env, cwd=cwd)

        b.spawn = recording_spawn
        peers = [b.start_eugate()] + ([] if a.only_eugate else [b.start_rclone()])
        for p in peers:
            t0 = time.perf_counter()
            fill(p, a.files, a.size)
            e2e.log(f"{p.name}: wrote {a.files} files in {time.perf_counter() - t0:.1f} s")
        # rclone's directory cache learnt every name while it wrote them: a fresh process (same
        # config, same port) makes its first listing a cold one, as eugate's always is.
        if not a.only_eugate:
            rclone = peers[1]
            os.killpg(rclone.proc.pid, signal.SIGTERM)
            rclone.proc.wait(timeout=30)
            argv, env, cwd = spawned["rclone"]
            rclone.proc = spawn("rclone-fresh", argv, env=env, cwd=cwd)
            rclone.pid = rclone.proc.pid  # what measure() samples
            e2e.wait_port(rclone.port, rclone.proc, "rclone")
        times = {p.name: [] for p in peers}
        rss = {p.name: 0.0 for p in peers}
        cpu = {p.name: [] for p in peers}
        for run in range(a.runs):
            for p in (peers if run % 2 == 0 else peers[::-1]):
                # measure(): the server's CPU and peak RSS around the listing (the sampler's
                # own period bounds how short a peak it sees).
                r = e2e.measure(p, {}, lambda: listing(p, a.files, a.size))
                took = r["extra"]
                times[p.name].append(took)
                rss[p.name] = max(rss[p.name], r["rss_mib"])
                cpu[p.name].append(r["cpu"])
                e2e.log(f"run {run + 1}/{a.runs} {p.name}: {took:.3f} s, server CPU "
                        f"{r['cpu']:.2f} s, peak RSS {r['rss_mib']:.0f} MiB")
        print(f"== listing {a.files} files of {a.size} B over SFTP (paramiko listdir_attr), "
              f"Garage over {'HTTP' if a.s3_plain_http else 'TLS'}, eugate legacy_objects = "
              f"{'true' if a.legacy_objects else 'false'}; seconds")
        summary = {}
        for p in peers:
            cold, warm = times[p.name][0], times[p.name][1:] or times[p.name]
            med = statistics.median(warm)
            summary[p.name] = (cold, med)
            print(f"{p.name:<14} cold {cold:7.3f}   warm median {med:7.3f} (min {min(warm):.3f}, "
                  f"max {max(warm):.3f})   per 1,000 warm {med * 1000 / a.files:.3f}   "
                  f"server CPU median {statistics.median(cpu[p.name]):.2f} s, "
                  f"peak RSS {rss[p.name]:.0f} MiB")
        if a.only_eugate:
            return
        e, r = summary["eugate"], summary["rclone-crypt"]
        print(f"list: eugate/rclone-crypt cold x{e[0] / r[0]:.2f}, warm x{e[1] / r[1]:.2f} "
              f"({a.files} files, {a.runs} runs, {os.cpu_count()} cores)")
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()

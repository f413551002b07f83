#!/usr/bin/env python3
"""Scale benchmark: N concurrent uploads through HAProxy to two eugate instances, against the same N
uploads to one instance directly, in the same run.

Started by benches/scale.sh (which installs HAProxy and the tools and builds eugate). It reuses
benches/e2e.py's servers and /proc measurement: Garage (by default a 3-node cluster with
replication_factor 3 on loopback, `--garage-nodes 1` for one node), stunnel for TLS in front of
Garage's first node (as every real S3 provider is HTTPS-only; `--s3-plain-http` skips it), and two
eugate instances, gw-a and gw-b, that share keyring, master key, host key and users and write to one
bucket; their configs differ only in port, `[server] instance_id`, `[audit] file` and
`[storage] upload_journal`. HAProxy runs in TCP mode in front of both, `balance roundrobin`,
connecting from 127.0.0.2; with --proxy-protocol it sends PROXY v2 and the instances accept it from
127.0.0.2 (`[server] proxy_protocol_from`).

After an unmeasured warm-up round (--count uploads of --warmup bytes through HAProxy), each run has
two setups, in alternating order from run to run (--runs, default 2, so each order once):
  * direct: --count uploads of --size each (OpenSSH sftp clients in parallel processes, random data
    generated once) straight to gw-a, gw-b idle;
  * haproxy: the same uploads to HAProxy's port, spread over gw-a and gw-b.
Measured per setup: aggregate MB/s (10^6 B/s, the successful uploads' bytes / wall time from the first client's start to
the last one's exit); per instance the CPU-seconds (utime+stime from /proc/PID/stat before/after)
per GiB it committed (its audit log's `committed` records), and its peak RSS (VmHWM, reset through
/proc/PID/clear_refs before each setup; VmRSS sampled every 50 ms as a cross-check); HAProxy's,
Garage's (all nodes), stunnel's and the clients' CPU-s per GiB.
After each setup: every object is in the bucket with the sealed size its plaintext size implies, no
multipart upload is left (ListMultipartUploads), and one object, fetched back, opens with
`eugate decrypt` to the uploaded bytes. At the end both audit chains verify.

Output: two tables and a last line
`scale: haproxy+2 <MB/s> MB/s vs direct <MB/s> MB/s (x<r>); CPU-s/GiB gw-a <c> (x<r>), gw-b ...;
peak RSS ...; HAProxy <c> CPU-s/GiB; ...` with ratios against the direct setup of the same run.
No thresholds: the numbers depend on the machine and on whatever else it runs.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import GIB, MIB, Peer, free_port, log, make_file, parse_size, server_env, sha256, tree_cpu, wait_port  # noqa: E402
from s3_check import S3, sealed_len  # noqa: E402
from scale_report import report  # noqa: E402

e2e.LOG_PREFIX = "scale"

BUCKET = "eugate-scale"
TENANT = "bench"
INSTANCES = ("gw-a", "gw-b")
# The balancer's source address towards the instances; what `proxy_protocol_from` trusts.
BALANCER_ADDR = "127.0.0.2"


# ---------------------------------------------------------------- memory


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pid):
    """Resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Peak VmRSS of each pid, sampled every 50 ms (a cross-check of VmHWM)."""

    def __init__(self, pids):
        self.peak = {p: 0 for p in pids}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for p in self.peak:
                self.peak[p] = max(self.peak[p], status_kib(p, "VmRSS"))
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# ---------------------------------------------------------------- servers


class ScaleBench(e2e.Bench):
    def start_instances(self, proxy_protocol):
        """gw-a and gw-b: one directory, one keyring, master key, host key and user key; a config
        each that differs only in port, instance id, audit file and upload journal."""
        d = self.path("eugate")
        os.makedirs(d, mode=0o700)
        self.eugate_dir = d
        eug = self.a.eugate
        self.keygen(os.path.join(d, "host_ed25519"), "host")
        self.keygen(os.path.join(d, "user"), TENANT)
        keys = [eug, "keys", "--keyring", os.path.join(d, "keyring"), "--master-key-file", os.path.join(d, "master.key")]
        subprocess.run(keys + ["init"], check=True, capture_output=True)
        subprocess.run(keys + ["add-tenant", TENANT], check=True, capture_output=True)
        env = server_env(RUST_LOG="warn", NO_COLOR="1", EUGATE_S3_EU_ACCESS_KEY_ID=e2e.GARAGE_KEY_ID,
                         EUGATE_S3_EU_SECRET_ACCESS_KEY=self.s3_secret)
        ca = f'ca_bundle = "{self.ca_pem}"\n' if self.tls_port else ""
        n = self.a.count
        proxy = f'proxy_protocol_from = ["{BALANCER_ADDR}"]\n' if proxy_protocol else ""
        budget = f'memory_budget = "{self.a.memory_budget}"\n' if self.a.memory_budget else ""
        out = []
        for iid in INSTANCES:
            port = free_port()
            conf = os.path.join(d, f"{iid}.toml")
            with open(conf, "w") as f:
                f.write(f"""[server]
listen = ["127.0.0.1:{port}"]
host_keys = ["host_ed25519"]
instance_id = "{iid}"
max_sessions_per_user = {max(64, n)}
shutdown_grace_secs = 5
{proxy}
[keys]
keyring = "keyring"
master_key_file = "master.key"

[audit]
file = "audit-{iid}.jsonl"

[storage]
upload_journal = "uploads-{iid}.journal"
{budget}
[limits]
# Every client logs in at once from one address (127.0.0.1, or the balancer without PROXY protocol).
max_unauthenticated_per_source = {max(32, n)}
max_unauthenticated = {max(128, n)}

[destinations.eu]
kind = "s3"
provider = "self-hosted"
endpoint = "{self.s3_endpoint()}"
bucket = "{BUCKET}"
region = "eu-central-1"
country = "DE"
path_style = true
credentials = {{ env = "EUGATE_S3_EU" }}
{ca}
[tenants.{TENANT}]
route = {{ destination = "eu", prefix = "{TENANT}/" }}
classification = "personal"

[tenants.{TENANT}.users.{TENANT}]
authorized_keys_file = "user.pub"
permissions = ["read", "write", "delete"]

{self.a.eugate_toml}
""")
            r = subprocess.run([eug, "config", "check", conf], capture_output=True, text=True)
            if r.returncode != 0:
                hint = (" (--proxy-protocol needs an eugate with `[server] proxy_protocol_from`)"
                        if proxy_protocol and "proxy_protocol_from" in r.stdout + r.stderr else "")
                raise RuntimeError(f"eugate config check {conf}{hint}: {(r.stdout + r.stderr).strip()[-1500:]}")
            p = self.spawn(iid, [eug, "serve", "--config", conf], env=env, cwd=d)
            wait_port(port, p, iid)
            peer = Peer(iid, p, port, TENANT, os.path.join(d, "user"), "", True)
            peer.audit = os.path.join(d, f"audit-{iid}.jsonl")
            out.append(peer)
            log(f"{iid} on 127.0.0.1:{port} (pid {p.pid})")
        return out

    def start_haproxy(self, instances, proxy_protocol):
        d = self.path("haproxy")
        os.makedirs(d)
        port = free_port()
        self.haproxy_sock = os.path.join(d, "haproxy.sock")
        pp = " send-proxy-v2" if proxy_protocol else ""
        servers = "".join(f"    server {i.name} 127.0.0.1:{i.port} source {BALANCER_ADDR}{pp}\n" for i in instances)
        # splice(2) moves the bytes from one socket to the other inside the kernel, never through
        # HAProxy's buffers; --haproxy-no-splice measures it without.
        splice = "" if self.a.haproxy_no_splice else "    option splice-request\n    option splice-response\n"
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(f"""global
    maxconn 4096
    stats socket {self.haproxy_sock} mode 600 level user

defaults
    mode tcp
{splice}    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend sftp
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    # Production pins clients by source (`balance source`, deploy/), but every client of this
    # benchmark comes from 127.0.0.1, so that would send them all to one instance.
    balance roundrobin
{servers}""")
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        r = subprocess.run([haproxy, "-c", "-f", conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"haproxy -c: {r.stdout}{r.stderr}")
        self.haproxy_version = subprocess.run([haproxy, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        # -db: stay in the foreground, one process (its threads), so its CPU is one /proc entry.
        p = self.spawn("haproxy", [haproxy, "-db", "-f", conf])
        wait_port(port, p, "haproxy")
        log(f"haproxy on 127.0.0.1:{port} -> {', '.join(f'{i.name} :{i.port}' for i in instances)}"
            f"{' with PROXY v2' if proxy_protocol else ''}")
        return Peer("haproxy", p, port, TENANT, instances[0].key, "", True)

    def haproxy_sessions(self):
        """Total sessions HAProxy has sent to each server (`show stat`, column stot)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.haproxy_sock)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        cols = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == "gateways" and row.get("svname") in INSTANCES:
                out[row["svname"]] = int(row["stot"] or 0)
        return out


# ---------------------------------------------------------------- one setup


def upload_all(b, target, src, stem, n):
    """n OpenSSH sftp clients at once, each putting src as <stem>-<i>.bin; the failures' stderr."""
    procs = [b.sftp(target, f"put {src} {stem}-{i}.bin\n") for i in range(n)]
    for p, batch in procs:
        p.stdin.write(batch.encode())
        p.stdin.close()
    failed = []
    for p, _ in procs:
        p.stdout.read()
        err = p.stderr.read()
        if p.wait() != 0:
            failed.append(err.decode(errors="replace")[-500:])
    return failed


def audit_since(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def events(inst, offset, kind):
    """The `event` objects of type `kind` the instance's audit log gained after `offset`."""
    return [r["event"] for r in audit_since(inst.audit, offset) if r.get("event", {}).get("type") == kind]


def committed(inst, offset, stem):
    return [e for e in events(inst, offset, "committed") if f"{stem}-" in e.get("object", "")]


def auth_sources(inst, offset):
    """The client addresses of accepted logins: 127.0.0.1 (the clients) directly or with PROXY
    protocol, the balancer's 127.0.0.2 without."""
    return sorted({e["source"].rsplit(":", 1)[0] for e in events(inst, offset, "auth")
                   if e.get("outcome") == "accepted"})


def run_setup(b, setup, target, instances, src, stem):
    a = b.a
    aux = {"haproxy": [b.haproxy.pid], "garage": b.garage_pids}
    if b.stunnel_pid:
        aux["stunnel"] = [b.stunnel_pid]
    hwm_ok = all(reset_hwm(i.pid) for i in instances)
    cpu0 = {i.name: tree_cpu(i.pid)[0] for i in instances}
    aux0 = {k: sum(tree_cpu(p)[0] for p in pids) for k, pids in aux.items()}
    off = {i.name: os.path.getsize(i.audit) for i in instances}
    sess0 = b.haproxy_sessions()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with RssSampler([i.pid for i in instances]) as rss:
        t0 = time.perf_counter()
        failed = upload_all(b, target, src, stem, a.count)
        wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = {i.name: tree_cpu(i.pid)[0] for i in instances}
    aux1 = {k: sum(tree_cpu(p)[0] for p in pids) for k, pids in aux.items()}
    sess1 = b.haproxy_sessions()
    ok = a.count - len(failed)
    for f in failed:
        log(f"{setup}: an upload failed: {f}")
    # Each commit is normally in the audit log by the time its client exits; the bounded wait is
    # a margin, not something the numbers depend on.
    deadline = time.time() + 10
    while sum(len(committed(i, off[i.name], stem)) for i in instances) < ok and time.time() < deadline:
        time.sleep(0.1)
    r = {"setup": setup, "wall": wall, "mbs": ok * a.size / 1e6 / wall, "ok": ok, "failed": len(failed),
         "client_cpu": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
         "instances": {}}
    for k in aux:
        r[f"{k}_cpu"] = aux1[k] - aux0[k]
    for i in instances:
        com = committed(i, off[i.name], stem)
        plain = sum(c.get("plaintext_size", 0) for c in com)
        cpu = cpu1[i.name] - cpu0[i.name]
        r["instances"][i.name] = {
            "uploads": len(com), "plaintext_bytes": plain, "cpu": cpu,
            "cpu_per_gib": cpu / (plain / GIB) if plain else None,
            "peak_rss_mib": (status_kib(i.pid, "VmHWM") if hwm_ok else rss.peak[i.pid]) / 1024,
            "peak_rss_source": "VmHWM" if hwm_ok else "sampled VmRSS",
            "sampled_rss_mib": rss.peak[i.pid] / 1024,
            "haproxy_sessions": sess1.get(i.name, 0) - sess0.get(i.name, 0),
            "auth_sources": auth_sources(i, off[i.name]),
        }
    r["verify"] = verify(b, stem)
    log(f"{setup}: {r['mbs']:.1f} MB/s, {ok}/{a.count} ok, " + ", ".join(
        f"{k} {v['uploads']} uploads {v['cpu']:.1f} CPU-s {v['peak_rss_mib']:.0f} MiB"
        for k, v in r["instances"].items()) + f", HAProxy {r['haproxy_cpu']:.2f} CPU-s; verify: {r['verify']}")
    return r


def verify(b, stem):
    """Every object of this setup present with the sealed size of --size, no multipart upload left,
    and one object opens with `eugate decrypt` to the uploaded bytes. Returns "ok" or the problems."""
    a, s3 = b.a, b.s3
    problems = []
    objs = dict(s3.objects(BUCKET, f"{TENANT}/{stem}-"))
    want = {f"{TENANT}/{stem}-{i}.bin" for i in range(a.count)}
    if set(objs) != want:
        problems.append(f"objects missing {sorted(want - set(objs))[:5]}, unexpected {sorted(set(objs) - want)[:5]}")
    left = s3.uploads(BUCKET)
    if left:
        problems.append(f"{len(left)} multipart upload(s) left: {left[:5]}")
    if objs:
        key = sorted(objs)[0]
        sealed = os.path.join(b.shm, "check.sealed")
        opened = os.path.join(b.shm, "check.plain")
        s3.download(BUCKET, key, sealed)
        with open(sealed, "rb") as f:
            header_len = int.from_bytes(f.read(10)[8:10], "big")
        want_size = sealed_len(header_len, a.size)
        wrong = {k: v for k, v in objs.items() if v != want_size}
        if wrong:
            problems.append(f"{len(wrong)} object(s) not {want_size} bytes: {list(wrong.items())[:3]}")
        d = b.eugate_dir
        r = subprocess.run([a.eugate, "decrypt", "--keyring", os.path.join(d, "keyring"),
                            "--master-key-file", os.path.join(d, "master.key"), "--tenant", TENANT, sealed, opened],
                           capture_output=True, text=True)
        if r.returncode != 0:
            problems.append(f"eugate decrypt {key}: {r.stderr.strip()[-500:]}")
        elif sha256(opened) != b.src_sha:
            problems.append(f"{key} decrypts to other bytes than were uploaded")
        for p in (sealed, opened):
            if os.path.exists(p):
                os.unlink(p)
    return "ok" if not problems else "; ".join(problems)


# ---------------------------------------------------------------- main


def check_disk_space(a):
    """Garage keeps every byte (times the replication factor) under /tmp until the run ends."""
    need = int((2 * a.runs * a.size + a.warmup) * a.count * a.garage_nodes * 1.1)
    free = shutil.disk_usage("/tmp").free
    if need > free:
        sys.exit(f"scale: Garage will store about {need / 1e9:.1f} GB under /tmp, but only "
                 f"{free / 1e9:.1f} GB are free; use fewer --runs, --garage-nodes 1 or a smaller --size")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=32, help="concurrent uploads per setup (default 32)")
    ap.add_argument("--size", type=parse_size, default=64 * MIB, help="bytes per upload (default 64M)")
    ap.add_argument("--runs", type=int, default=2,
                    help="runs of both setups, order alternating (default 2: each order once; the "
                         "first measured setup of a process tends to be the slowest)")
    ap.add_argument("--warmup", type=parse_size, default=16 * MIB,
                    help="bytes per client of the unmeasured warm-up round through HAProxy (default 16M, 0: none)")
    ap.add_argument("--garage-nodes", type=int, choices=[1, 3], default=3,
                    help="Garage nodes; 3 = a cluster with replication_factor 3, as production would run")
    ap.add_argument("--proxy-protocol", action="store_true",
                    help="HAProxy sends PROXY v2 and the instances accept it from 127.0.0.2 "
                         "([server] proxy_protocol_from); needs an eugate that has the key")
    ap.add_argument("--haproxy-no-splice", action="store_true",
                    help="HAProxy copies through user space (default: `option splice-request` and `splice-response`)")
    ap.add_argument("--s3-plain-http", action="store_true",
                    help="eugate talks plain HTTP to Garage (no stunnel; eugate then SHA-256s every byte)")
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com", help="sftp -c")
    ap.add_argument("--requests", type=int, default=64, help="sftp -R (outstanding requests)")
    ap.add_argument("--eugate", default=os.path.join(e2e.REPO, "target", "release", "eugate"))
    ap.add_argument("--garage", default=os.environ.get("GARAGE", "/opt/eugate-tools/bin/garage"))
    ap.add_argument("--memory-budget", help="[storage] memory_budget of each instance, e.g. 512MiB "
                                            "(default: eugate's default)")
    ap.add_argument("--eugate-toml", default="", help="extra TOML appended to both instances' configs")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs) for inspection")
    a = ap.parse_args()
    a.eugate, a.garage = os.path.abspath(a.eugate), os.path.abspath(a.garage)
    if a.count < 1 or a.size < 1 or a.runs < 1:
        ap.error("--count, --size and --runs must be positive")
    return a


def warm_up(b, instances):
    """Unmeasured: --count uploads of --warmup bytes through HAProxy (both instances). Without it,
    in a 3-node run, the first measured setup cost Garage 49 CPU-s/GiB and the three after it 31-33,
    whichever setup came first; the warm-up narrows that gap but did not close it on a loaded
    machine, hence each order once (--runs 2)."""
    a = b.a
    if a.warmup <= 0:
        return
    warm = os.path.join(b.shm, "warm.bin")
    make_file(warm, a.warmup)
    t0 = time.perf_counter()
    failed = upload_all(b, b.haproxy, warm, "warmup", a.count)
    if failed:
        raise RuntimeError(f"{len(failed)} warm-up upload(s) failed: {failed[0]}")
    os.unlink(warm)
    log(f"warm-up: {a.count} x {a.warmup} bytes through HAProxy in {time.perf_counter() - t0:.1f} s")


def main():
    a = parse_args()
    check_disk_space(a)
    b = ScaleBench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    runs = []
    try:
        b.start_garage(nodes=a.garage_nodes, buckets=(BUCKET,))
        if not a.s3_plain_http:
            b.start_tls()
        b.s3 = S3(b.garage_port, e2e.GARAGE_KEY_ID, b.s3_secret)
        instances = b.start_instances(a.proxy_protocol)
        b.haproxy = b.start_haproxy(instances, a.proxy_protocol)
        src = os.path.join(b.shm, "src.bin")
        log(f"writing {a.size} random bytes")
        make_file(src, a.size)
        b.src_sha = sha256(src)
        warm_up(b, instances)
        for run in range(a.runs):
            order = [("direct", instances[0]), ("haproxy", b.haproxy)]
            for setup, target in (order if run % 2 == 0 else order[::-1]):
                runs.append(dict(run_setup(b, setup, target, instances, src, f"{setup}-r{run}"), run=run + 1))
        for i in instances:
            r = subprocess.run([a.eugate, "audit", "verify", i.audit], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"{i.name}'s audit chain does not verify: {r.stdout}{r.stderr}")
        log("both audit chains verify")
    finally:
        b.cleanup()
    header = [
        f"# scale: {a.count} x {a.size / MIB:.0f} MiB concurrent uploads, {a.runs} run(s) per setup, "
        f"sftp -c {a.cipher} -R {a.requests}; {os.cpu_count()} cores; MB = 10^6 bytes; "
        "medians over runs (peak RSS: max)",
        f"# Garage: {a.garage_nodes} node(s), replication_factor {a.garage_nodes}; S3 transport: "
        + ("plain HTTP" if a.s3_plain_http else f"TLS (stunnel {b.stunnel_version} in front of Garage's first node)"),
        f"# {b.haproxy_version}: TCP mode, balance roundrobin, source {BALANCER_ADDR}, "
        f"PROXY protocol v2 {'on' if a.proxy_protocol else 'off'}, "
        f"{'no splice' if a.haproxy_no_splice else 'option splice-request/-response'}",
    ]
    report(a, runs, header, INSTANCES, {"cores": os.cpu_count(), "haproxy": b.haproxy_version})
    bad = [r for r in runs if r["verify"] != "ok" or r["failed"]]
    if bad:
        sys.exit(f"scale: {len(bad)} setup run(s) had failed uploads or failed the store check (see the table)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        sys.exit(130)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        sys.exit(f"scale: {e}")

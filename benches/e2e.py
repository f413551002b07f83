#!/usr/bin/env python3
"""End-to-end SFTP benchmark: eugate vs `rclone serve sftp` (crypt over S3) vs OpenSSH sftp-server,
and eugate's FTPS front end beside its SFTP one.

Started by benches/e2e.sh (which installs the tools and builds eugate). Everything runs on
loopback ports inside one temp dir and is torn down on exit, also on Ctrl-C / SIGTERM.

What is measured, per peer, with the OpenSSH `sftp` client (`-b` batch, cipher pinned with -c):
  * first, unmeasured: one 32 MiB upload per S3-backed peer, so that no figure includes Garage's
    warm-up (--no-warmup skips it);
  * one upload of --size bytes, --runs times (interleaved across peers): wall MB/s (10^6 B/s),
    server CPU-seconds per GiB (utime+stime of the server's process tree, children included,
    from /proc before/after) and peak RSS of that tree (sampled every 50 ms from /proc, the
    numbers `ps -o rss=` prints; reading /proc directly keeps the sampler's own CPU out of the way);
  * --concurrent (default 64) concurrent uploads of --concurrent-size (default 16 MiB) each, then
    the same files downloaded, 64 at once (each checked byte-identical): aggregate MB/s,
    CPU-s/GiB and peak RSS of each step;
  * one download of the --size file (checked byte-identical by SHA-256);
  * eugate only, if asked: --rss-concurrent N more concurrent uploads of --concurrent-size,
    printed as its own line after the table,
    `eugate Nx16MiB concurrent: <MB/s> MB/s, peak RSS <N> MiB, <n>/N ok`. --no-concurrent skips
    every concurrent step.
The final line, `e2e: ...`, gives per peer the single upload (MB/s, CPU-s/GiB, MiB), the single
download (MB/s, CPU-s/GiB) and the concurrent steps (MB/s, CPU-s/GiB, peak MiB), then eugate's
upload and download wall ratios to rclone-crypt and the ratio the machine allows.
Garage's own CPU is reported beside the S3-backed peers: it is work the S3 server does, not the peer.

FTPS row (peer `eugate-ftps`, on by default): a second eugate process, configured like the first
(same destination, same Garage or tmpfs, its own tenant prefix) but uploaded to with
`curl --ssl-reqd` over explicit FTPS (AUTH TLS, PROT P) instead of sftp, TLS 1.3 pinned to
AES-128-GCM (--ftps-tls13-ciphers) as sftp is pinned to aes128-gcm; the server certificate comes from
a throwaway CA made by certs/make-demo-ca.sh and curl verifies it. Its own process, so its peak RSS
is not the SFTP runs' leftover. The same single uploads (interleaved with the SFTP peers), the same
--concurrent step and the download, measured the same way; after the table one line,
`ftps: eugate-ftps <CPU-s/GiB> CPU-s/GiB, peak RSS <N> MiB; FTPS/SFTP CPU <r>, RSS <r>`,
the ratios to eugate's SFTP figures of the same run.

S3 transport. Every real S3 provider is HTTPS-only, and eugate skips SigV4 payload signing only over
TLS (over plain HTTP it SHA-256s every byte), so by default the S3 peers talk TLS: a throwaway CA and a
server certificate for 127.0.0.1 are made with openssl in the temp dir, and stunnel (Garage has no TLS)
terminates TLS on a loopback port and forwards to Garage. eugate gets `endpoint = "https://..."` and
`ca_bundle`, rclone gets `--ca-cert`. stunnel's CPU is its own column (work neither gateway does). The
table's header says which transport ran, and which TLS version / cipher suite stunnel negotiated; each S3
peer's TCP connections are sampled from /proc to show it talked to the TLS port, never Garage's port.
EUGATE_BENCH_LOG, if set, is the gateway's RUST_LOG (default "warn"), e.g.
"warn,aws_smithy_runtime::client::retries=debug" to see the S3 client's retries in eugate.log
(kept with --keep).
--s3-plain-http keeps the plain-HTTP path (no stunnel). Every server is started without the CA
variables of the caller's environment (SSL_CERT_FILE, AWS_CA_BUNDLE, ...), so only the files named
here are trusted.
"""
import argparse
import hashlib
import json
import os
import resource
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
# The unmeasured upload each S3-backed peer makes before the measured ones.
WARMUP_SIZE = 32 << 20
MIB = 1 << 20

GARAGE_KEY_ID = "GK0123456789abcdef01234567"

# CA settings a server could pick up from this machine's environment; every server the benchmark
# starts runs without them, so it trusts exactly the CA file it is given (or the system roots).
CA_ENV_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
               "NIX_SSL_CERT_FILE")


def server_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CA_ENV_VARS}
    env.update(extra)
    return env


# benches/scale.py imports this module and sets its own prefix.
LOG_PREFIX = "e2e"


def log(msg):
    print(f"[{LOG_PREFIX}] {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: write e.g. 1G, 256M, 64MiB")
    mult = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name, timeout=60, banner=b"SSH-"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(7).startswith(banner):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout}s")


# ---------------------------------------------------------------- /proc measurement


def proc_table():
    """pid -> (ppid, utime+stime+cutime+cstime in ticks)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                raw = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2:].split()
        # fields after the comm: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
        out[int(d)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    return out


def tree(root, table):
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in table:
            out.append(p)
            todo.extend(kids.get(p, []))
    return out


def tree_cpu(root):
    """CPU-seconds of root and its living descendants; reaped children are in root's cutime."""
    t = proc_table()
    return sum(t[p][1] for p in tree(root, t)) / CLK_TCK, len(tree(root, t))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tcp_remote_ports(pids, ports, own_port):
    """Remote ports among `ports` of the TCP connections the processes opened (IPv4 and IPv6);
    sockets on `own_port` (accepted SFTP clients) are skipped."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    seen = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    # local_address rem_address st ... inode (column 9)
                    if cols[9] in inodes and int(cols[1].rsplit(":", 1)[1], 16) != own_port:
                        port = int(cols[2].rsplit(":", 1)[1], 16)
                        if port in ports:
                            seen.add(port)
        except OSError:
            continue
    return seen


class Sampler:
    """Peak RSS of a process tree, sampled every 50 ms; every second also which of `watch_ports`
    (the S3 ports) the tree has TCP connections to."""

    def __init__(self, root, watch_ports=(), own_port=None):
        self.root, self.peak, self._stop, self.own_port = root, 0, threading.Event(), own_port
        self.watch_ports, self.ports_seen = set(watch_ports), set()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        n = 0
        while not self._stop.is_set():
            pids = tree(self.root, proc_table())
            self.peak = max(self.peak, sum(rss_kib(p) for p in pids))
            if self.watch_ports and n % 20 == 0:
                self.ports_seen |= tcp_remote_ports(pids, self.watch_ports, self.own_port)
            n += 1
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def settle(root, base_procs, timeout=10):
    """Waits until per-connection server processes have exited (so their CPU is reaped)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, n = tree_cpu(root)
        if n <= base_procs:
            return
        time.sleep(0.05)


def measure(peer, aux, fn, watch_ports=()):
    """Runs fn() (which performs the transfer) and returns wall, server CPU-s, peak RSS MiB, and the
    CPU-s of each auxiliary server in `aux` (name -> pid: Garage, stunnel) as `<name>_cpu`."""
    settle(peer.pid, peer.base_procs)
    cpu0, _ = tree_cpu(peer.pid)
    a0 = {k: tree_cpu(pid)[0] for k, pid in aux.items()}
    # The sftp clients are the only children reaped during fn() (servers live on), so the
    # change in RUSAGE_CHILDREN is their CPU, ssh subprocesses included.
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Sampler(peer.pid, watch_ports, peer.port) as s:
        t0 = time.perf_counter()
        extra = fn()
        wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    settle(peer.pid, peer.base_procs)
    cpu1, _ = tree_cpu(peer.pid)
    r = {"wall": wall, "cpu": cpu1 - cpu0, "rss_mib": s.peak / 1024, "extra": extra,
         "s3_ports": sorted(s.ports_seen),
         "client_cpu": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)}
    for k, pid in aux.items():
        r[f"{k}_cpu"] = tree_cpu(pid)[0] - a0[k]
    return r


# ---------------------------------------------------------------- servers


class Peer:
    def __init__(self, name, proc, port, user, key, remote_dir, uses_garage):
        self.name, self.proc, self.port, self.user, self.key = name, proc, port, user, key
        self.remote_dir, self.uses_garage = remote_dir, uses_garage
        self.pid = proc.pid
        self.base_procs = 1
        # FTPS peers: the CA file curl trusts and the user's password (None: an SFTP peer).
        self.ca = self.password = None

    def remote(self, name):
        return f"{self.remote_dir.rstrip('/')}/{name}" if self.remote_dir else name


class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="eugate-e2e-", dir="/tmp")
        # Client files and the tmpfs-backed stores live in RAM so disk speed stays out of it.
        self.shm = tempfile.mkdtemp(prefix="eugate-e2e-", dir="/dev/shm")
        self.garage_pid = None
        self.s3_secret = os.urandom(32).hex()
        # Shared by every node of a Garage cluster (benches/scale.py).
        self.garage_rpc_secret = os.urandom(32).hex()
        self.garage_port = None
        # TLS in front of Garage (None with --s3-plain-http).
        self.tls_port = self.ca_pem = self.stunnel_pid = None
        self.stunnel_version = None

    def s3_endpoint(self):
        if self.tls_port:
            return f"https://127.0.0.1:{self.tls_port}"
        return f"http://127.0.0.1:{self.garage_port}"

    def aux(self, peer):
        """The servers whose CPU is reported beside an S3-backed peer."""
        if not peer.uses_garage:
            return {}
        out = {"garage": self.garage_pid}
        if self.stunnel_pid:
            out["stunnel"] = self.stunnel_pid
        return out

    def s3_ports(self, peer):
        return (self.garage_port, self.tls_port) if peer.uses_garage and self.tls_port else (
            (self.garage_port,) if peer.uses_garage else ())

    # ------------------------------------------------------------ plumbing
    def spawn(self, name, argv, env=None, cwd=None):
        logf = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env or server_env(), cwd=cwd,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def cleanup(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        if self.a.keep:
            log(f"kept {self.tmp} and {self.shm}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
            shutil.rmtree(self.shm, ignore_errors=True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def keygen(self, path, comment):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True)

    # ------------------------------------------------------------ Garage
    def start_garage(self, nodes=1, buckets=("eugate-bench", "rclone-bench")):
        """Garage with `buckets`, readable and writable with the bench key. nodes > 1 (benches/scale.py):
        a cluster on loopback storing every block on every node (replication_factor = nodes, one zone
        per node); each node has its own S3 port, and clients are given the first node's."""
        self.garage_nodes = [self.garage_node("garage" if i == 0 else f"garage-{i + 1}", nodes)
                             for i in range(nodes)]
        self.garage_pids = [n["proc"].pid for n in self.garage_nodes]
        first = self.garage_nodes[0]
        for node in self.garage_nodes:
            full_id = node["cli"]("node", "id", "-q").strip()
            node["id"] = full_id.split("@")[0]
            if node is not first:
                first["cli"]("node", "connect", full_id)
        self.garage_pid, self.garage_port = first["proc"].pid, first["api"]
        for i, node in enumerate(self.garage_nodes):
            first["cli"]("layout", "assign", "-z", f"dc{i + 1}", "-c", "1G", node["id"])
        first["cli"]("layout", "apply", "--version", "1")
        if nodes > 1:
            for node in self.garage_nodes:
                deadline = time.time() + 60
                while "Current cluster layout version: 1" not in node["cli"]("layout", "show"):
                    if time.time() > deadline:
                        raise RuntimeError(f"garage node on {node['api']} never saw the cluster layout")
                    time.sleep(0.2)
        first["cli"]("key", "import", "--yes", "-n", "bench", GARAGE_KEY_ID, self.s3_secret)
        for b in buckets:
            first["cli"]("bucket", "create", b)
            first["cli"]("bucket", "allow", "--read", "--write", "--owner", b, "--key", "bench")
        log(f"garage on 127.0.0.1:{first['api']}" + (f" (+{nodes - 1} more nodes, replication_factor {nodes})"
                                                     if nodes > 1 else ""))

    def garage_node(self, name, replication):
        """Starts one Garage node (config and data in <tmp>/<name>); returns its process, S3 port and
        a `cli(*args)` that runs the garage CLI against it, retrying until the node answers."""
        g = self.a.garage
        rpc, api = free_port(), free_port()
        d = self.path(name)
        os.makedirs(d)
        conf = os.path.join(d, "garage.toml")
        with open(conf, "w") as f:
            f.write(f"""metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{self.garage_rpc_secret}"

[s3_api]
s3_region = "eu-central-1"
api_bind_addr = "127.0.0.1:{api}"
root_domain = ".s3.garage.localhost"
""")
        env = server_env(RUST_LOG="warn")
        p = self.spawn(name, [g, "-c", conf, "server"], env=env)

        def cli(*args, retry=True):
            deadline = time.time() + 60
            while True:
                r = subprocess.run([g, "-c", conf, *args], capture_output=True, text=True)
                if r.returncode == 0 or not retry or time.time() > deadline:
                    if r.returncode != 0:
                        raise RuntimeError(f"garage {' '.join(args)}: {r.stderr.strip()}")
                    return r.stdout
                if p.poll() is not None:
                    raise RuntimeError(f"garage exited: see {self.path(name + '.log')}")
                time.sleep(0.2)

        return {"proc": p, "api": api, "cli": cli}

    # ------------------------------------------------------------ TLS in front of Garage (stunnel)
    def start_tls(self):
        d = self.path("tls")
        os.makedirs(d, mode=0o700)

        def ossl(*args):
            r = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=d)
            if r.returncode != 0:
                raise RuntimeError(f"openssl {args[0]}: {r.stderr.strip()[-1000:]}")

        # A minimal config so the system openssl.cnf adds no extensions of its own.
        with open(os.path.join(d, "openssl.cnf"), "w") as f:
            f.write("""[req]
distinguished_name = dn
prompt = no
[dn]
CN = eugate-e2e throwaway CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
""")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        ossl("req", "-config", "openssl.cnf", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-extensions", "v3_ca")
        ossl("req", "-config", "openssl.cnf", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1")
        ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "openssl.cnf", "-extensions", "v3_server")
        self.ca_pem = os.path.join(d, "ca.pem")

        stunnel = shutil.which("stunnel") or shutil.which("stunnel4")
        if not stunnel:
            raise RuntimeError("stunnel not found; install stunnel4 (benches/e2e.sh does) or pass --s3-plain-http")
        v = subprocess.run([stunnel, "-version"], capture_output=True, text=True)
        m = re.search(r"stunnel (\S+)", v.stdout + v.stderr)
        self.stunnel_version = m.group(1) if m else "?"
        port = free_port()
        conf = os.path.join(d, "stunnel.conf")
        with open(conf, "w") as f:
            # debug = info logs each connection's TLS version and cipher suite (read for the header).
            f.write(f"""foreground = yes
pid = {d}/stunnel.pid
debug = info
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[garage-s3]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{self.garage_port}
cert = {d}/server.pem
key = {d}/server.key
""")
        p = self.spawn("stunnel", [stunnel, conf])
        self.stunnel_pid = p.pid
        # Handshake as a client trusting only the throwaway CA: proves stunnel listens and the
        # certificate verifies for 127.0.0.1.
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca_pem)
        deadline = time.time() + 30
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"stunnel exited with {p.returncode}: see {self.path('stunnel.log')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                        hs = f"{t.version()} {t.cipher()[0]}"
                break
            except ssl.SSLError:
                raise
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"stunnel did not listen on {port} within 30s")
                time.sleep(0.1)
        # Count only the benchmark's connections: skip the log up to the test handshake's line.
        self.stunnel_log_skip = 0
        deadline = time.time() + 5
        while time.time() < deadline and not self.stunnel_log_skip:
            with open(self.path("stunnel.log"), "rb") as f:
                text = f.read()
            if re.search(rb"TLSv[\d.]+ ciphersuite: ", text):
                self.stunnel_log_skip = len(text)
            else:
                time.sleep(0.05)
        self.tls_port = port
        log(f"stunnel {self.stunnel_version} TLS on 127.0.0.1:{port} -> garage 127.0.0.1:{self.garage_port} "
            f"(test handshake: {hs})")

    def tls_negotiated(self):
        """Distinct 'TLSv1.3 ciphersuite: X' lines of stunnel's log, with how many connections each."""
        counts = {}
        try:
            with open(self.path("stunnel.log"), "rb") as f:
                f.seek(self.stunnel_log_skip)
                for line in f.read().decode(errors="replace").splitlines():
                    m = re.search(r"(TLSv[\d.]+) ciphersuite: (\S+)", line)
                    if m:
                        k = f"{m.group(1)} {m.group(2)}"
                        counts[k] = counts.get(k, 0) + 1
        except OSError:
            pass
        return counts

    # ------------------------------------------------------------ eugate
    def start_eugate(self, ftps=False):
        """eugate serving SFTP; with ftps=True the `eugate-ftps` peer: the same configuration plus
        [ftps] (certificate from certs/make-demo-ca.sh, a random password), its own tenant prefix."""
        name = "eugate-ftps" if ftps else "eugate"
        d = self.path(name)
        os.makedirs(d, mode=0o700)
        eug = self.a.eugate
        self.keygen(os.path.join(d, "host_ed25519"), "host")
        self.keygen(os.path.join(d, "user"), "bench")
        keys = [eug, "keys", "--keyring", os.path.join(d, "keyring"), "--master-key-file", os.path.join(d, "master.key")]
        subprocess.run(keys + ["init"], check=True, capture_output=True)
        subprocess.run(keys + ["add-tenant", "bench"], check=True, capture_output=True)
        port = free_port()
        env = server_env(RUST_LOG=os.environ.get("EUGATE_BENCH_LOG", "warn"), NO_COLOR="1")
        if self.a.eugate_dest == "s3":
            ca = f'ca_bundle = "{self.ca_pem}"\n' if self.tls_port else ""
            dest = f"""[destinations.eu]
kind = "s3"
provider = "self-hosted"
endpoint = "{self.s3_endpoint()}"
bucket = "eugate-bench"
region = "eu-central-1"
country = "DE"
path_style = true
credentials = {{ env = "EUGATE_S3_EU" }}
{ca}"""
            env["EUGATE_S3_EU_ACCESS_KEY_ID"] = GARAGE_KEY_ID
            env["EUGATE_S3_EU_SECRET_ACCESS_KEY"] = self.s3_secret
        else:
            store = os.path.join(self.shm, f"{name}-store")
            os.makedirs(store, mode=0o700)
            dest = f"""[destinations.eu]
kind = "fs"
root = "{store}"
country = "DE"
"""
        ftps_toml, user_toml, ftps_port = "", "", None
        if ftps:
            certs = os.path.join(d, "certs")
            subprocess.run([os.path.join(REPO, "certs", "make-demo-ca.sh"), certs], check=True,
                           stdout=subprocess.DEVNULL)
            password = os.urandom(16).hex()
            phc = subprocess.run([eug, "passwd"], input=password + "\n", check=True, capture_output=True,
                                 text=True).stdout.strip()
            user_toml = f'password_hash = "{phc}"\n'
            ftps_port, pasv = free_port(), min(free_port(), 65535 - 64)
            ftps_toml = f"""
[ftps]
listen = ["127.0.0.1:{ftps_port}"]
certificate = "certs/server.pem"
private_key = "certs/server.key"
passive_ports = "{max(pasv, 1024)}-{max(pasv, 1024) + 64}"
"""
        conf = os.path.join(d, "gateway.toml")
        with open(conf, "w") as f:
            f.write(f"""[server]
listen = ["127.0.0.1:{port}"]
host_keys = ["host_ed25519"]
max_sessions_per_user = {max(64, self.a.concurrent, self.a.rss_concurrent)}
shutdown_grace_secs = 5

[keys]
keyring = "keyring"
master_key_file = "master.key"

{dest}
[tenants.bench]
route = {{ destination = "eu", prefix = "{'bench-ftps' if ftps else 'bench'}/" }}
classification = "personal"

[tenants.bench.users.bench]
authorized_keys_file = "user.pub"
permissions = ["read", "write", "delete"]
{user_toml}{ftps_toml}
# Every client of the benchmark connects from 127.0.0.1: the per-source cap on connections still
# logging in (32 by default) would refuse part of the concurrent logins (FTPS ones first: TLS and
# USER/PASS take longer than SSH's handshake).
[limits]
max_unauthenticated_per_source = {max(64, self.a.concurrent, self.a.rss_concurrent)}
max_unauthenticated = {max(128, self.a.concurrent, self.a.rss_concurrent)}
{self.a.eugate_toml}
""")
        subprocess.run([eug, "config", "check", conf], check=True, stdout=sys.stderr)
        p = self.spawn("eugate", [eug, "serve", "--config", conf], env=env, cwd=d)
        wait_port(port, p, name)
        if not ftps:
            return Peer("eugate", p, port, "bench", os.path.join(d, "user"), "", self.a.eugate_dest == "s3")
        wait_port(ftps_port, p, name, banner=b"220")
        peer = Peer(name, p, ftps_port, "bench", None, "", self.a.eugate_dest == "s3")
        peer.ca, peer.password = os.path.join(d, "certs", "ca.pem"), password
        return peer

    # ------------------------------------------------------------ rclone serve sftp (crypt over S3)
    def start_rclone(self):
        d = self.path("rclone")
        os.makedirs(d, mode=0o700)
        self.keygen(os.path.join(d, "host_ed25519"), "host")
        self.keygen(os.path.join(d, "user"), "bench")
        obscured = subprocess.run(["rclone", "obscure", os.urandom(16).hex()], check=True,
                                  capture_output=True, text=True).stdout.strip()
        conf = os.path.join(d, "rclone.conf")
        with open(conf, "w") as f:
            f.write(f"""[garage]
type = s3
provider = Other
endpoint = {self.s3_endpoint()}
region = eu-central-1
force_path_style = true
access_key_id = {GARAGE_KEY_ID}
secret_access_key = {self.s3_secret}

[secret]
type = crypt
remote = garage:rclone-bench
password = {obscured}
""")
        os.chmod(conf, 0o600)
        port = free_port()
        # server_env() also drops AWS_CA_BUNDLE, which the AWS SDK in rclone refuses beside its own
        # HTTP transport; the CA comes from --ca-cert.
        ca = ["--ca-cert", self.ca_pem] if self.tls_port else []
        p = self.spawn("rclone", ["rclone", "--config", conf, *ca, "serve", "sftp", "secret:",
                                  "--addr", f"127.0.0.1:{port}",
                                  "--key", os.path.join(d, "host_ed25519"),
                                  "--authorized-keys", os.path.join(d, "user.pub")])
        wait_port(port, p, "rclone")
        return Peer("rclone-crypt", p, port, "bench", os.path.join(d, "user"), "", True)

    # ------------------------------------------------------------ OpenSSH sshd + sftp-server
    def start_openssh(self):
        d = self.path("sshd")
        os.makedirs(d, mode=0o700)
        self.keygen(os.path.join(d, "host_ed25519"), "host")
        self.keygen(os.path.join(d, "user"), "bench")
        shutil.copy(os.path.join(d, "user.pub"), os.path.join(d, "authorized_keys"))
        store = os.path.join(self.shm, "openssh-store")
        os.makedirs(store, mode=0o700)
        os.makedirs("/run/sshd", exist_ok=True)
        port = free_port()
        sftp_server = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                                        "/usr/libexec/sftp-server") if os.path.exists(p)), None)
        if not sftp_server:
            raise RuntimeError("OpenSSH sftp-server not found; install openssh-server")
        conf = os.path.join(d, "sshd_config")
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        with open(conf, "w") as f:
            f.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
# The default MaxStartups 10:30:100 randomly drops some of 16 simultaneous logins.
MaxStartups 100
Subsystem sftp {sftp_server}
""")
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        p = self.spawn("sshd", [sshd, "-D", "-e", "-f", conf])
        wait_port(port, p, "sshd")
        return Peer("openssh", p, port, user, os.path.join(d, "user"), store, False)

    # ------------------------------------------------------------ client
    def sftp(self, peer, batch, verbose=False):
        argv = ["sftp", "-b", "-", "-P", str(peer.port), "-i", peer.key,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-c", self.a.cipher, "-R", str(self.a.requests)]
        # -q (no progress meter) would also silence -v, which the cipher check reads.
        argv.insert(1, "-v" if verbose else "-q")
        argv.append(f"{peer.user}@127.0.0.1")
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=self.shm), batch

    def curl(self, peer, args, verbose=False):
        """curl over explicit FTPS to an FTPS peer, verifying its certificate against the peer's CA."""
        argv = ["curl", "-v" if verbose else "-sS", "--ssl-reqd", "--cacert", peer.ca,
                "--tls13-ciphers", self.a.ftps_tls13_ciphers, "--user", f"{peer.user}:{peer.password}", *args]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=self.shm), ""

    def url(self, peer, name=""):
        return f"ftp://127.0.0.1:{peer.port}/{name}"

    def start_transfer(self, peer, op, local, remote):
        """Starts one `put` or `get` with the peer's client (sftp, or curl for FTPS); returns
        (process, text for its stdin)."""
        if peer.password is None:
            return self.sftp(peer, f"{op} {local} {remote}\n" if op == "put" else f"get {remote} {local}\n")
        return self.curl(peer, ["-T", local, self.url(peer, remote)] if op == "put"
                         else [self.url(peer, remote), "-o", local])

    def transfer(self, peer, op, local, remote):
        p, stdin = self.start_transfer(peer, op, local, remote)
        _, err = p.communicate(stdin.encode())
        if p.returncode != 0:
            raise RuntimeError(f"{peer.name}: {op} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")

    def negotiated(self, peer):
        """The cipher the client negotiated, from its verbose output on a tiny session."""
        if peer.password is None:
            err = self.sftp_run(peer, "pwd\n", verbose=True)
            m = re.search(r"kex: server->client cipher: (\S+)", err)
            return m.group(1) if m else "?"
        p, _ = self.curl(peer, [self.url(peer)], verbose=True)
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{peer.name}: curl listing failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
        m = re.search(r"SSL connection using (\S+) / (\S+)", err.decode(errors="replace"))
        return f"{m.group(1)} {m.group(2)}" if m else "?"

    def sftp_run(self, peer, batch, verbose=False):
        p, batch = self.sftp(peer, batch, verbose)
        out, err = p.communicate(batch.encode())
        if p.returncode != 0:
            raise RuntimeError(f"{peer.name}: sftp failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
        return err.decode(errors="replace")


def make_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def check_disk_space(a, peers_wanted):
    """Garage keeps every uploaded byte under /tmp until the run ends. A full disk shows up
    as failed CLOSEs and collapsing throughput late in a run, so refuse to start instead."""
    s3_peers = [p for p in peers_wanted
                if p == "rclone-crypt" or (p in ("eugate", "eugate-ftps") and a.eugate_dest == "s3")]
    need = 0
    for p in s3_peers:
        need += a.size * a.runs
        if not a.no_concurrent:
            need += a.concurrent * a.concurrent_size
            if p == "eugate":
                need += a.rss_concurrent * a.concurrent_size
    need = int(need * 1.1)  # sealing / crypt overhead, Garage metadata
    free = shutil.disk_usage("/tmp").free
    if need > free:
        sys.exit(f"e2e: Garage will store about {need / 1e9:.1f} GB under /tmp for this run, "
                 f"but only {free / 1e9:.1f} GB are free; free some space (leftover "
                 f"/tmp/eugate-e2e-* dirs from --keep runs?) or use a smaller --size / --runs")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=GIB, help="upload/download size (default 1G)")
    ap.add_argument("--runs", type=int, default=3, help="single-upload runs per peer (default 3)")
    ap.add_argument("--eugate-dest", choices=["s3", "fs"], default="s3",
                    help="eugate's destination: s3 on the same Garage (default) or fs on tmpfs")
    ap.add_argument("--peers", default="eugate,eugate-ftps,rclone-crypt,openssh",
                    help="eugate (SFTP), eugate-ftps (a second eugate, uploaded to with curl over FTPS), "
                         "rclone-crypt, openssh")
    ap.add_argument("--concurrent", type=int, default=64,
                    help="clients uploading at once, then downloading at once (default 64)")
    ap.add_argument("--concurrent-size", type=parse_size, default=16 * MIB)
    ap.add_argument("--no-concurrent", action="store_true",
                    help="skip both concurrent steps (--concurrent and --rss-concurrent)")
    ap.add_argument("--rss-concurrent", type=int, default=0,
                    help="eugate only: N concurrent uploads of --concurrent-size for the memory target "
                         "(peak RSS <= 512 MiB at 32), printed after the table (default 32, 0 disables)")
    ap.add_argument("--s3-plain-http", action="store_true",
                    help="S3 peers talk plain HTTP straight to Garage (no stunnel; eugate then SHA-256s "
                         "every payload byte for SigV4). Default: TLS through stunnel, as with real providers")
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the unmeasured 32 MiB upload each S3-backed peer makes first")
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com",
                    help="pinned with sftp -c; aes128-gcm is the AES-GCM cipher all three peers offer")
    ap.add_argument("--requests", type=int, default=64, help="sftp -R (outstanding requests)")
    ap.add_argument("--ftps-tls13-ciphers", default="TLS_AES_128_GCM_SHA256",
                    help="curl --tls13-ciphers for the FTPS row (AES-128-GCM, like the sftp cipher)")
    ap.add_argument("--eugate", default=os.path.join(REPO, "target", "release", "eugate"))
    ap.add_argument("--garage", default=os.environ.get("GARAGE", "/opt/eugate-tools/bin/garage"))
    ap.add_argument("--eugate-toml", default="",
                    help="extra TOML appended to eugate's gateway.toml (e.g. a [storage] section)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs) for inspection")
    a = ap.parse_args()
    a.eugate, a.garage = os.path.abspath(a.eugate), os.path.abspath(a.garage)
    peers_wanted = [p.strip() for p in a.peers.split(",") if p.strip()]
    check_disk_space(a, peers_wanted)

    b = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    results = {}
    try:
        need_garage = "rclone-crypt" in peers_wanted or (
            {"eugate", "eugate-ftps"} & set(peers_wanted) and a.eugate_dest == "s3")
        if need_garage:
            b.start_garage()
            if not a.s3_plain_http:
                b.start_tls()
            log(f"S3 transport: {transport(a, b)}")
        peers = []
        for name in peers_wanted:
            start = {"eugate": b.start_eugate, "eugate-ftps": lambda: b.start_eugate(ftps=True),
                     "rclone-crypt": b.start_rclone, "openssh": b.start_openssh}[name]
            peers.append(start())
        for p in peers:
            # Per-connection helpers (sshd children) come and go; the idle tree is the baseline.
            time.sleep(0.2)
            p.base_procs = tree_cpu(p.pid)[1]

        src = os.path.join(b.shm, "src.bin")
        log(f"writing {a.size} random bytes")
        make_file(src, a.size)
        src_sha = sha256(src)
        csrc = os.path.join(b.shm, "csrc.bin")
        if not a.no_concurrent:
            make_file(csrc, a.concurrent_size)

        for p in peers:
            results[p.name] = {"up": [], "cipher": None, "conc": None, "conc_down": None, "down": None,
                               "rss_conc": None,
                               "garage": p.uses_garage, "stunnel": p.uses_garage and bool(b.tls_port)}
            results[p.name]["cipher"] = b.negotiated(p)

        if need_garage and not a.no_warmup:
            # The first upload after Garage starts has now and then run at a fifth of the speed
            # at normal CPU (29-34 MB/s; only ever the first one on a fresh Garage, whichever
            # peer made it): one unmeasured upload per S3 peer first, so no peer's figures
            # include the store's warm-up.
            warm = os.path.join(b.shm, "warm.bin")
            make_file(warm, WARMUP_SIZE)
            for p in peers:
                if p.uses_garage:
                    t0 = time.time()
                    b.transfer(p, "put", warm, p.remote("warmup.bin"))
                    log(f"warm-up {p.name}: {WARMUP_SIZE / 1e6 / (time.time() - t0):.1f} MB/s (not counted)")
            os.unlink(warm)

        for run in range(a.runs):
            for p in peers:
                r = measure(p, b.aux(p), lambda p=p: b.transfer(p, "put", src, p.remote("up.bin")),
                            b.s3_ports(p))
                results[p.name]["up"].append(r)
                log(f"run {run + 1}/{a.runs} {p.name}: {a.size / 1e6 / r['wall']:.1f} MB/s, "
                    f"{r['cpu'] / (a.size / GIB):.2f} CPU-s/GiB, {r['rss_mib']:.0f} MiB")

        if not a.no_concurrent:
            def run_all(p, procs, what):
                """Lets every started transfer go at once; returns how many failed."""
                for proc, batch in procs:
                    proc.stdin.write(batch.encode())
                    proc.stdin.close()
                bad = 0
                for proc, _ in procs:
                    proc.stdout.read()
                    err = proc.stderr.read()
                    if proc.wait() != 0:
                        bad += 1
                        log(f"{p.name}: a concurrent {what} failed: {err.decode(errors='replace')[-500:]}")
                return bad

            def conc(p, n, stem):
                procs = [b.start_transfer(p, "put", csrc, p.remote(f"{stem}{i}.bin")) for i in range(n)]
                return run_all(p, procs, "upload")

            csha = sha256(csrc)

            def conc_get(p, n, stem):
                dsts = [os.path.join(b.shm, f"{p.name}-{stem}{i}.bin") for i in range(n)]
                procs = [b.start_transfer(p, "get", d, p.remote(f"{stem}{i}.bin")) for i, d in enumerate(dsts)]
                run_all(p, procs, "download")  # counted by the SHA-256 check afterwards
                return dsts

            for p in peers:
                r = measure(p, b.aux(p), lambda p=p: conc(p, a.concurrent, "c"), b.s3_ports(p))
                results[p.name]["conc"] = r
                total = a.concurrent * a.concurrent_size
                log(f"{a.concurrent}x{a.concurrent_size >> 20}MiB {p.name}: {total / 1e6 / r['wall']:.1f} MB/s, "
                    f"{r['cpu'] / (total / GIB):.2f} CPU-s/GiB, {r['rss_mib']:.0f} MiB, failed {r['extra']}")
                if a.no_download:
                    continue
                r = measure(p, b.aux(p), lambda p=p: conc_get(p, a.concurrent, "c"), b.s3_ports(p))
                # Checked after the measurement: a download counts only if it is byte-identical.
                dsts, bad = r["extra"], 0
                for d in dsts:
                    bad += not (os.path.exists(d) and sha256(d) == csha)
                    if os.path.exists(d):
                        os.unlink(d)
                r["extra"] = bad
                results[p.name]["conc_down"] = r
                log(f"{a.concurrent}x{a.concurrent_size >> 20}MiB download {p.name}: "
                    f"{total / 1e6 / r['wall']:.1f} MB/s, {r['cpu'] / (total / GIB):.2f} CPU-s/GiB, "
                    f"{r['rss_mib']:.0f} MiB, failed or different {bad}")

            eug = next((p for p in peers if p.name == "eugate"), None)
            if eug and a.rss_concurrent > 0:
                r = measure(eug, b.aux(eug), lambda: conc(eug, a.rss_concurrent, "r"), b.s3_ports(eug))
                results["eugate"]["rss_conc"] = r
                total = a.rss_concurrent * a.concurrent_size
                log(f"{a.rss_concurrent}x{a.concurrent_size >> 20}MiB eugate: {total / 1e6 / r['wall']:.1f} MB/s, "
                    f"{r['cpu'] / (total / GIB):.2f} CPU-s/GiB, {r['rss_mib']:.0f} MiB, failed {r['extra']}")

        if not a.no_download:
            for p in peers:
                dst = os.path.join(b.shm, f"down-{p.name}.bin")
                r = measure(p, b.aux(p), lambda p=p, dst=dst: b.transfer(p, "get", dst, p.remote("up.bin")),
                            b.s3_ports(p))
                r["extra"] = sha256(dst) == src_sha
                os.unlink(dst)
                results[p.name]["down"] = r
                log(f"download {p.name}: {a.size / 1e6 / r['wall']:.1f} MB/s, identical={r['extra']}")
        tls_seen = b.tls_negotiated() if b.tls_port else {}
        check_s3_ports(b, peers, results)
    finally:
        b.cleanup()

    report(a, results, transport(a, b, tls_seen) if need_garage else "none (no S3 peer)")


def transport(a, b, tls_seen=None):
    if a.s3_plain_http or not b.tls_port:
        return f"plain HTTP straight to Garage (127.0.0.1:{b.garage_port}; eugate SHA-256s every payload byte)"
    text = f"TLS (stunnel {b.stunnel_version} in front of Garage, CA via ca_bundle / rclone --ca-cert)"
    if tls_seen:
        text += "; negotiated " + ", ".join(f"{k} ({n} conn.)" for k, n in sorted(tls_seen.items()))
    return text


def check_s3_ports(b, peers, results):
    """Fails the run if an S3 peer was seen connected to the wrong S3 port (Garage's plain port under
    TLS), and logs which port each one used."""
    for p in peers:
        if not p.uses_garage:
            continue
        r = results[p.name]
        seen = set()
        for m in r["up"] + [r["conc"], r["conc_down"], r["rss_conc"], r["down"]]:
            if m:
                seen |= set(m["s3_ports"])
        names = {b.garage_port: f"Garage plain HTTP {b.garage_port}"}
        if b.tls_port:
            names[b.tls_port] = f"stunnel TLS {b.tls_port}"
        log(f"{p.name} connected to: {', '.join(names[x] for x in sorted(seen)) or 'nothing sampled'}")
        if b.tls_port and b.garage_port in seen:
            raise RuntimeError(f"{p.name} connected to Garage's plain-HTTP port {b.garage_port}, not to TLS")
        r["s3_ports_seen"] = sorted(seen)


def fmt_range(vals, f="{:.1f}"):
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f.format(med)
    return f"{f.format(med)} [{f.format(min(vals))}–{f.format(max(vals))}]"


def report(a, results, transport_text):
    size_gib = a.size / GIB
    rows = []
    summary = {}
    whole = {}
    for name, r in results.items():
        mbs = [a.size / 1e6 / u["wall"] for u in r["up"]]
        cpu = [u["cpu"] / size_gib for u in r["up"]]
        rss = max((u["rss_mib"] for u in r["up"]), default=0)
        gcpu = [u.get("garage_cpu", 0.0) / size_gib for u in r["up"]]
        summary[name] = (statistics.median(mbs), statistics.median(cpu), rss)
        # Everything this peer's upload makes the machine do, per GiB: the server, the S3 server
        # and TLS proxy behind it, and the client.
        whole[name] = statistics.median(
            (u["cpu"] + u.get("garage_cpu", 0.0) + u.get("stunnel_cpu", 0.0) + u.get("client_cpu", 0.0))
            / size_gib for u in r["up"])
        row = {
            "peer": name + (f" ({a.eugate_dest})" if name.startswith("eugate") else ""),
            "upload MB/s med [range]": fmt_range(mbs),
            "CPU-s/GiB": fmt_range(cpu, "{:.2f}"),
            "peak RSS MiB": f"{rss:.0f}",
            "Garage CPU-s/GiB": fmt_range(gcpu, "{:.2f}") if r["garage"] else "-",
            "stunnel CPU-s/GiB": fmt_range([u["stunnel_cpu"] / size_gib for u in r["up"]], "{:.2f}")
            if r["stunnel"] else "-",
            "client CPU-s/GiB": fmt_range([u.get("client_cpu", 0.0) / size_gib for u in r["up"]], "{:.2f}"),
            "cipher": r["cipher"],
        }
        c = r["conc"]
        if c:
            total = a.concurrent * a.concurrent_size
            row[f"{a.concurrent}x{a.concurrent_size >> 20}MiB MB/s"] = f"{total / 1e6 / c['wall']:.1f}" + (
                f" ({c['extra']} failed)" if c["extra"] else "")
            row["conc CPU-s/GiB"] = f"{c['cpu'] / (total / GIB):.2f}"
            row["conc RSS MiB"] = f"{c['rss_mib']:.0f}"
        cd = r.get("conc_down")
        if cd:
            total = a.concurrent * a.concurrent_size
            row[f"{a.concurrent}x{a.concurrent_size >> 20}MiB down MB/s"] = (
                f"{total / 1e6 / cd['wall']:.1f}" + (f" ({cd['extra']} failed)" if cd["extra"] else ""))
            row["conc down CPU-s/GiB"] = f"{cd['cpu'] / (total / GIB):.2f}"
            row["conc down RSS MiB"] = f"{cd['rss_mib']:.0f}"
        d = r["down"]
        if d:
            row["download MB/s"] = f"{a.size / 1e6 / d['wall']:.1f}" + ("" if d["extra"] else " (MISMATCH)")
            row["dl CPU-s/GiB"] = f"{d['cpu'] / size_gib:.2f}"
            row["dl RSS MiB"] = f"{d['rss_mib']:.0f}"
        rows.append(row)
    if "eugate" in summary:
        e = summary["eugate"]
        for row, name in zip(rows, results):
            if name in summary and summary[name][0] > 0:
                o = summary[name]
                row["eugate/peer MB/s"] = f"{e[0] / o[0]:.2f}"
                row["eugate/peer CPU"] = f"{e[1] / o[1]:.2f}" if o[1] > 0 else "-"
    cols = []
    for row in rows:
        for k in row:
            if k not in cols:
                cols.append(k)
    print(f"# e2e: {a.size / MIB:.0f} MiB x {a.runs} run(s), sftp -c {a.cipher} -R {a.requests}, "
          f"{a.concurrent}x{a.concurrent_size >> 20} MiB concurrent, MB = 10^6 bytes")
    print(f"# S3 transport: {transport_text}")
    if "eugate-ftps" in results:
        print(f"# eugate-ftps: curl --ssl-reqd (explicit FTPS, PROT P, passive) --tls13-ciphers "
              f"{a.ftps_tls13_ciphers}, server certificate verified against a throwaway CA")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        print("| " + " | ".join(row.get(k, "") for k in cols) + " |")
    # The same for downloads: what the whole machine spends per GiB downloaded, per peer.
    whole_down = {}
    for name, r in results.items():
        d = r.get("down")
        if d:
            whole_down[name] = (d["cpu"] + d.get("garage_cpu", 0.0) + d.get("stunnel_cpu", 0.0)
                                + d.get("client_cpu", 0.0)) / size_gib
    if "eugate" in whole_down and "rclone-crypt" in whole_down:
        print(f"# machine CPU-s per GiB downloaded: eugate {whole_down['eugate']:.2f}, rclone-crypt "
              f"{whole_down['rclone-crypt']:.2f}; download wall-ratio if both saturate {os.cpu_count()} "
              f"cores: {whole_down['rclone-crypt'] / whole_down['eugate']:.2f}")
    if "eugate" in whole and "rclone-crypt" in whole:
        # With every core busy, wall time per GiB is at least the machine's CPU-s per GiB divided
        # by the core count; a gateway costing nothing leaves the rest of eugate's path.
        e, r_ = whole["eugate"], whole["rclone-crypt"]
        e_rest = e - summary["eugate"][1]
        print(f"# machine CPU-s per GiB uploaded (server + S3 + TLS proxy + client): eugate {e:.2f}, "
              f"rclone-crypt {r_:.2f}; wall-ratio if both saturate {os.cpu_count()} cores: {r_ / e:.2f}; "
              f"if eugate itself cost nothing: {r_ / e_rest:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(a).items()}, "results": results}, f, indent=1, default=str)

    def part(name):
        if name not in summary:
            return f"{name} n/a MB/s n/a CPU-s/GiB n/a MiB"
        m, c, r = summary[name]
        text = f"{name} {m:.1f} MB/s {c:.2f} CPU-s/GiB {r:.0f} MiB"
        d = results[name].get("down")
        if d:
            text += f", down {a.size / 1e6 / d['wall']:.1f} MB/s {d['cpu'] / size_gib:.2f} CPU-s/GiB"
        total = a.concurrent * a.concurrent_size
        for key, what in (("conc", "up"), ("conc_down", "down")):
            c = results[name].get(key)
            if c:
                text += (f", {a.concurrent}x{what} {total / 1e6 / c['wall']:.1f} MB/s "
                         f"{c['cpu'] / (total / GIB):.2f} CPU-s/GiB {c['rss_mib']:.0f} MiB")
        return text

    def down_mbs(name):
        d = results.get(name, {}).get("down")
        return a.size / 1e6 / d["wall"] if d else None

    rc = results.get("eugate", {}).get("rss_conc")
    if rc:
        n, total = a.rss_concurrent, a.rss_concurrent * a.concurrent_size
        extra = f", Garage {rc['garage_cpu'] / (total / GIB):.2f}" if "garage_cpu" in rc else ""
        extra += f", stunnel {rc['stunnel_cpu'] / (total / GIB):.2f}" if "stunnel_cpu" in rc else ""
        print(f"eugate {n}x{a.concurrent_size >> 20}MiB concurrent: {total / 1e6 / rc['wall']:.1f} MB/s, "
              f"peak RSS {rc['rss_mib']:.0f} MiB, {n - rc['extra']}/{n} ok "
              f"({rc['cpu'] / (total / GIB):.2f} CPU-s/GiB{extra})")

    if "eugate-ftps" in summary:
        f_, e = summary["eugate-ftps"], summary.get("eugate")
        ratios = (f"FTPS/SFTP CPU {f_[1] / e[1]:.2f}, RSS {f_[2] / e[2]:.2f}" if e and e[1] > 0 and e[2] > 0
                  else "no SFTP figure in this run")
        print(f"ftps: eugate-ftps {f_[1]:.2f} CPU-s/GiB, peak RSS {f_[2]:.0f} MiB, {f_[0]:.1f} MB/s; "
              f"eugate (SFTP) {e[1]:.2f} CPU-s/GiB, peak RSS {e[2]:.0f} MiB; {ratios}" if e else
              f"ftps: eugate-ftps {f_[1]:.2f} CPU-s/GiB, peak RSS {f_[2]:.0f} MiB; {ratios}")

    ratio = (f"{summary['eugate'][0] / summary['rclone-crypt'][0]:.2f}"
             if "eugate" in summary and "rclone-crypt" in summary else "n/a")
    de, dr = down_mbs("eugate"), down_mbs("rclone-crypt")
    down_ratio = f"{de / dr:.2f}" if de and dr else "n/a"
    if "eugate" in whole_down and "rclone-crypt" in whole_down:
        down_ratio += f" (machine bound {whole_down['rclone-crypt'] / whole_down['eugate']:.2f})"
    bound = (f"{whole['rclone-crypt'] / whole['eugate']:.2f}"
             if "eugate" in whole and "rclone-crypt" in whole else "n/a")
    others = "".join(f"; {part(n)}" for n in ("openssh", "eugate-ftps") if n in summary)
    print(f"e2e: {part('eugate')}; {part('rclone-crypt')}{others}; wall-ratio {ratio} "
          f"(machine bound {bound}), download wall-ratio {down_ratio}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        sys.exit(130)

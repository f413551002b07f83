"""Shared by the deploy/ checks: paths, the gateway's defaults read from its source, running
tools, and small parsers for the files' formats."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY = REPO / "deploy"
EUGATE = Path(os.environ.get("EUGATE_BIN", REPO / "target" / "release" / "eugate"))
HAPROXY_CA = "/etc/haproxy/eugate-admin-ca.pem"
PROMETHEUS_CA = "/etc/prometheus/eugate-admin-ca.pem"

def require(tool, installed_by):
    if shutil.which(tool) is None:
        raise AssertionError(f"`{tool}` is missing; scripts/test installs it ({installed_by})")


def run(args, **kw):
    """Runs a command; fails the test with its output if it fails."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def substitute(text, old, new):
    """`text` with `old` replaced; `old` must occur, or the test checks something else."""
    if old not in text:
        raise AssertionError(f"`{old}` no longer occurs in the shipped file")
    return text.replace(old, str(new))


def rust_const(path, name):
    m = re.search(rf"pub const {name}: u64 = ([0-9_]+);", (REPO / path).read_text())
    if not m:
        raise AssertionError(f"{name} not found in {path}")
    return int(m.group(1).replace("_", ""))


IDLE_TIMEOUT = rust_const("src/config/server.rs", "DEFAULT_IDLE_TIMEOUT_SECS")
SHUTDOWN_GRACE = rust_const("src/config/server.rs", "DEFAULT_SHUTDOWN_GRACE_SECS")
DRAIN_DELAY = rust_const("src/config/admin.rs", "DEFAULT_DRAIN_DELAY_SECS")


def demo_ca(directory):
    """A throwaway CA and a certificate for localhost (certs/make-demo-ca.sh)."""
    ca = Path(directory) / "ca"
    run([REPO / "certs" / "make-demo-ca.sh", ca])
    return ca / "ca.pem"


def haproxy_sections(text):
    """Section header ('defaults', 'backend sftp', ...) -> its lines, without comments."""
    sections, current = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            current = stripped
            sections[current] = []
        else:
            sections[current].append(stripped)
    return sections


def seconds(value):
    """An HAProxy time ('500ms', '2s', '11m', '12h'; bare numbers are ms) in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    if not m:
        raise AssertionError(f"not an HAProxy time: {value}")
    unit = {None: 0.001, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * unit


def setting(lines, key):
    for line in lines:
        if line.startswith(key + " "):
            return line[len(key) + 1 :].strip()
    raise AssertionError(f"no `{key}`")


def manifests():
    files = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    return files, docs


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind} {name}")


def free_port():
    """A loopback port that no other caller got in this run: reserved with a file in the same
    directory as the Rust harness's (tests/common/ports.rs), since the kernel may hand the same
    free port to two callers, and then one server fails with "Address already in use"."""
    reservations = Path(tempfile.gettempdir()) / "eugate-test-ports"
    reservations.mkdir(exist_ok=True)
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            os.close(os.open(reservations / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return port
        except FileExistsError:
            continue
    raise AssertionError(f"no unreserved loopback port after 1000 tries; see {reservations}")


def eventually(secs, f):
    """Waits until f() holds; the deadline only guards against a hang, it is no timing check."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if f():
            return True
        time.sleep(0.05)
    return f()


def ssh_banner(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            return s.recv(7) == b"SSH-2.0"
    except OSError:
        return False


def config_check(toml_text):
    """`eugate config check` on a gateway.toml that names users' key files under /etc/eugate/users/."""
    with tempfile.TemporaryDirectory() as d:
        text = toml_text.replace("/etc/eugate/users/", d + "/")
        for m in re.finditer(r'authorized_keys_file = "([^"]+)\.pub"', text):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f", m.group(1)])
        config = Path(d) / "gateway.toml"
        config.write_text(text)
        run([EUGATE, "config", "check", config])

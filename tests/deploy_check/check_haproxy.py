"""deploy/haproxy/haproxy.cfg: haproxy -c, its settings against the gateway's defaults, and
its health checks run against a real gateway."""

import csv
import io
import signal
import socket
import subprocess
import tempfile
import unittest
from pathlib import Path

from gateway import DemoGateway
from support import (DEPLOY, DRAIN_DELAY, HAPROXY_CA, IDLE_TIMEOUT, demo_ca, eventually, free_port,
                     haproxy_sections, require, run, seconds, setting, ssh_banner, substitute)


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

"""deploy/prometheus/: promtool and blackbox_exporter checks, alert unit tests, and the alerts'
metric names against a real gateway's /metrics."""

import re
import shutil
import tempfile
import unittest
from pathlib import Path

import yaml

from gateway import DemoGateway
from support import DEPLOY, PROMETHEUS_CA, demo_ca, require, run, substitute


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

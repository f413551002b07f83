#!/usr/bin/env python3
"""The deployment files in deploy/ stay valid and consistent with the gateway.

Each file is checked by the tool that will read it (haproxy -c, promtool, blackbox_exporter,
kubernetes-validate, hadolint); the numbers they depend on (idle timeout, drain delay, grace
period, ports, paths, metric names) are compared with the gateway's source, its shipped
configuration and a running gateway; and HAProxy, with the shipped health-check lines, is run
against a real gateway's admin listener: up while /readyz answers 200, refused with a wrong
certificate name, and out of rotation after SIGTERM before the gateway stops listening.

scripts/test installs every tool and runs these checks; a missing tool fails, it is never skipped.
Usage: python3 tests/deploy_check [-v] [check_haproxy.HAProxyConfig ...]
(EUGATE_BIN: the gateway binary, default target/release/eugate)
"""

import sys
import unittest
from pathlib import Path

# The modules beside this file, whether run as `python3 tests/deploy_check` or by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHECKS = ["check_haproxy", "check_prometheus", "check_kubernetes", "check_systemd", "check_container"]

if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("-")]
    argv = sys.argv if names else sys.argv + CHECKS
    result = unittest.main(module=None, argv=argv, exit=False).result
    # No test run is a failure here, not a pass (a wrong name, an empty module).
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)

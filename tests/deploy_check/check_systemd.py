"""deploy/eugate.service against the example configs."""

import re
import tomllib
import unittest
from pathlib import Path

from support import DEPLOY


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

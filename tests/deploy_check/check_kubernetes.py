"""deploy/kubernetes/: strict schema validation, and the ConfigMap's gateway.toml against
`eugate config check` and the StatefulSet."""

import re
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path

from support import (DEPLOY, DRAIN_DELAY, SHUTDOWN_GRACE, config_check, find, manifests, require,
                     run, substitute)


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

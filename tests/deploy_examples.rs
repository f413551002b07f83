//! The production examples in `deploy/` must stay valid configurations: `eugate config check`
//! accepts each one once the users' public keys exist (they live in /etc on a real host).

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, keygen};

#[test]
fn every_deploy_example_passes_config_check() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut checked = 0;
    for entry in std::fs::read_dir(&deploy).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let users = format!("{}/", dir.path().display());
        let text = text.replace("/etc/eugate/users/", &users);
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("authorized_keys_file = \"") {
                let file = rest.split('"').next().unwrap();
                let key = Path::new(file.strip_suffix(".pub").unwrap());
                keygen(key, "deploy-example");
            }
        }
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, text).unwrap();
        let out = Command::new(bin())
            .args(["config", "check"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not pass `config check`:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the AWS and Garage examples, found {checked}"
    );
}

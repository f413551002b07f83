//! Host keys: OpenSSH private key files, private to their owner.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use russh::keys::PrivateKey;

use super::FrontendError;

pub fn load_host_keys(paths: &[PathBuf]) -> Result<Vec<PrivateKey>, FrontendError> {
    let mut keys = Vec::new();
    for p in paths {
        let err = |reason: String| FrontendError::HostKey {
            path: p.display().to_string(),
            reason,
        };
        let md = std::fs::metadata(p).map_err(|e| {
            err(format!(
                "{e}; create one with `ssh-keygen -t ed25519 -N '' -f {}`",
                p.display()
            ))
        })?;
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "permissions {mode:04o} let others read the private key; run `chmod 600 {}`",
                p.display()
            )));
        }
        let key = russh::keys::load_secret_key(p, None).map_err(|e| {
            err(format!(
                "not an unencrypted OpenSSH private key ({e}); generate one with ssh-keygen"
            ))
        })?;
        keys.push(key);
    }
    Ok(keys)
}

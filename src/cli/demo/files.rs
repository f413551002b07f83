//! The demo's files and their modes: secrets are created 0600 and refused when group or others
//! may read them; files clients trust are refused when group or others may write them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

/// The demo user's FTPS password, beside `demo_user_key`.
pub const PASSWORD_FILE: &str = "demo_user_password";

/// Creates `path` 0600 with `bytes`; never overwrites (a file that appeared meanwhile is an error).
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_new(path, bytes, 0o600)
}

/// Creates `path` 0644 with `bytes` (a certificate: public, but nobody else may change it).
pub fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_new(path, bytes, 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().ok();
    Ok(())
}

/// Refuses a secret that group or others can read or write.
pub fn check_secret(path: &Path) -> anyhow::Result<()> {
    let mode = mode_of(path)?;
    if mode & 0o077 != 0 {
        bail!(
            "{} is a secret but has mode {mode:04o} (group or others have access); run `chmod 600 {}` \
             (and think about who may have read it), or delete it to have the demo make a new one",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Refuses a file clients trust (a certificate) that group or others can change.
pub fn check_trusted(path: &Path) -> anyhow::Result<()> {
    let mode = mode_of(path)?;
    if mode & 0o022 != 0 {
        bail!(
            "{} has mode {mode:04o}: group or others can replace it; run `chmod 644 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn mode_of(path: &Path) -> anyhow::Result<u32> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("reading the metadata of {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!(
            "{} is not a regular file (a symlink or directory); the demo uses only files it made",
            path.display()
        );
    }
    Ok(meta.permissions().mode() & 0o7777)
}

/// The demo user's password: read from `dir/demo_user_password`, or made (144 random bits as
/// lowercase hex) and written 0600 there. Hex needs no quoting in a shell or URL, and unlike
/// base64url it never begins with `-`, which command-line tools would read as an option.
pub fn password(dir: &Path) -> anyhow::Result<Zeroizing<String>> {
    let path = dir.join(PASSWORD_FILE);
    if path.exists() {
        check_secret(&path)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        );
        let password = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string());
        if password.is_empty() {
            bail!(
                "{} is empty; delete it and gateway.toml's password_hash line (or the whole gateway.toml) to get a new password",
                path.display()
            );
        }
        return Ok(password);
    }
    new_hex_secret(&path, 18)
}

/// `bytes` random bytes as lowercase hex, written 0600 to `path` (a new file) and returned.
pub fn new_hex_secret(path: &Path, bytes: usize) -> anyhow::Result<Zeroizing<String>> {
    let mut random = Zeroizing::new(vec![0u8; bytes]);
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let secret = Zeroizing::new(hex::encode(&*random));
    let line = Zeroizing::new(format!("{}\n", secret.as_str()));
    write_secret(path, line.as_bytes())?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_0600_and_readable_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = password(dir.path()).unwrap();
        assert_eq!(p.len(), 36);
        assert!(
            p.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{}",
            p.as_str()
        );
        let file = dir.path().join(PASSWORD_FILE);
        assert_eq!(mode_of(&file).unwrap(), 0o600);
        // A second call reads the same password back.
        assert_eq!(*password(dir.path()).unwrap(), *p);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = password(dir.path()).unwrap_err().to_string();
        assert!(e.contains("0640") && e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn trusted_files_may_be_read_but_not_written_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        write_public(&f, b"x").unwrap();
        check_trusted(&f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_trusted(&f).unwrap_err().to_string().contains("0666"));
        // write_new never overwrites.
        assert!(write_public(&f, b"y").is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(
            check_secret(&link)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
    }
}

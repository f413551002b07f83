//! Files that hold secrets: created 0600, refused when group/world can read them, replaced atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::KeyError;

/// Reads a secret file after checking that only its owner can read it.
pub(crate) fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut file = File::open(path).map_err(|e| KeyError::io(path, e))?;
    let mode = file
        .metadata()
        .map_err(|e| KeyError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.read_to_end(&mut buf)
        .map_err(|e| KeyError::io(path, e))?;
    Ok(buf)
}

/// Creates `path` with mode 0600; fails if it already exists (never overwrite a key by accident).
pub(crate) fn create_new(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KeyError::io(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::io(path, e))?;
    sync_parent(path)
}

/// Replaces `path` atomically: a crash leaves either the old or the new contents, never a mix.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let dir = parent(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".eugate-keyring-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| KeyError::io(dir, e))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| KeyError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| KeyError::io(path, e.error))?;
    sync_parent(path)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A rename is durable only once the directory entry is synced.
fn sync_parent(path: &Path) -> Result<(), KeyError> {
    let dir = parent(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_files_are_private_and_open_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        create_new(&p, b"secret").unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(&read(&p).unwrap()[..], b"secret");
        assert!(matches!(create_new(&p, b"x"), Err(KeyError::Io { .. })));

        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            match read(&p) {
                Err(KeyError::TooOpen { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: expected TooOpen, got {other:?}"),
            }
        }
    }

    #[test]
    fn replace_keeps_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        create_new(&p, b"one").unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(&read(&p).unwrap()[..], b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

//! Object operations besides upload: stat, list, ranged read, delete, rename (server-side copy,
//! so sealed objects are never re-encrypted), and directory markers.

use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;

use super::{S3Error, Target};

/// S3 has no directories: a "directory" is a common prefix or a zero-byte `name/` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

fn full(target: &Target, key: &str) -> String {
    format!("{}{}", target.prefix, key)
}

fn modified(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|d| SystemTime::try_from(*d).ok())
}

pub async fn exists(target: &Target, key: &str) -> Result<bool, S3Error> {
    match stat(target, key).await {
        Ok(_) => Ok(true),
        Err(S3Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn stat(target: &Target, key: &str) -> Result<S3Entry, S3Error> {
    let out = target
        .client
        .head_object()
        .bucket(&target.bucket)
        .key(full(target, key))
        .send()
        .await
        .map_err(|e| S3Error::request("HeadObject", e))?;
    Ok(S3Entry {
        name: key.rsplit('/').next().unwrap_or(key).to_string(),
        is_dir: false,
        size: out.content_length().unwrap_or(0).max(0) as u64,
        modified: modified(out.last_modified()),
    })
}

/// Whether `dir` exists as a marker or as the prefix of at least one object.
pub async fn dir_exists(target: &Target, dir: &str) -> Result<bool, S3Error> {
    if dir.is_empty() {
        return Ok(true);
    }
    let out = target
        .client
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(format!("{}{}/", target.prefix, dir))
        .max_keys(1)
        .send()
        .await
        .map_err(|e| S3Error::request("ListObjectsV2", e))?;
    Ok(out.key_count().unwrap_or(0) > 0)
}

/// Entries directly below `dir` ("" = the destination root), following continuation tokens.
pub async fn list(target: &Target, dir: &str) -> Result<Vec<S3Entry>, S3Error> {
    let prefix = if dir.is_empty() {
        target.prefix.clone()
    } else {
        format!("{}{}/", target.prefix, dir)
    };
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = target
            .client
            .list_objects_v2()
            .bucket(&target.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| S3Error::request("ListObjectsV2", e))?;
        for p in out.common_prefixes() {
            if let Some(name) = p
                .prefix()
                .and_then(|p| p.strip_prefix(prefix.as_str()))
                .map(|n| n.trim_end_matches('/'))
                .filter(|n| !n.is_empty())
            {
                entries.push(S3Entry {
                    name: name.to_string(),
                    is_dir: true,
                    size: 0,
                    modified: None,
                });
            }
        }
        for o in out.contents() {
            let Some(name) = o.key().and_then(|k| k.strip_prefix(prefix.as_str())) else {
                continue;
            };
            if name.is_empty() {
                continue; // the directory's own marker
            }
            entries.push(S3Entry {
                name: name.to_string(),
                is_dir: false,
                size: o.size().unwrap_or(0).max(0) as u64,
                modified: modified(o.last_modified()),
            });
        }
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(entries)
}

pub async fn remove(target: &Target, key: &str) -> Result<(), S3Error> {
    // DeleteObject succeeds on missing keys; SFTP wants "no such file".
    if !exists(target, key).await? {
        return Err(S3Error::NotFound { op: "DeleteObject" });
    }
    target
        .client
        .delete_object()
        .bucket(&target.bucket)
        .key(full(target, key))
        .send()
        .await
        .map_err(|e| S3Error::request("DeleteObject", e))?;
    Ok(())
}

/// Server-side copy then delete: the sealed bytes (and their object id) stay as they are.
pub async fn rename(target: &Target, from: &str, to: &str) -> Result<(), S3Error> {
    let meta = stat(target, from).await?;
    if meta.size > 5 << 30 {
        return Err(S3Error::Request {
            op: "CopyObject",
            detail: "objects over 5 GiB cannot be renamed with a single copy".into(),
        });
    }
    let source = format!("{}/{}", target.bucket, urlencode_key(&full(target, from)));
    target
        .client
        .copy_object()
        .bucket(&target.bucket)
        .key(full(target, to))
        .copy_source(source)
        .send()
        .await
        .map_err(|e| S3Error::request("CopyObject", e))?;
    target
        .client
        .delete_object()
        .bucket(&target.bucket)
        .key(full(target, from))
        .send()
        .await
        .map_err(|e| S3Error::request("DeleteObject", e))?;
    Ok(())
}

pub async fn mkdir(target: &Target, dir: &str) -> Result<(), S3Error> {
    target
        .client
        .put_object()
        .bucket(&target.bucket)
        .key(format!("{}{}/", target.prefix, dir))
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .map_err(|e| S3Error::request("PutObject", e))?;
    Ok(())
}

pub async fn rmdir(target: &Target, dir: &str) -> Result<(), S3Error> {
    let marker = format!("{}{}/", target.prefix, dir);
    let out = target
        .client
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(&marker)
        .max_keys(2)
        .send()
        .await
        .map_err(|e| S3Error::request("ListObjectsV2", e))?;
    let others = out
        .contents()
        .iter()
        .filter(|o| o.key() != Some(marker.as_str()))
        .count();
    if others > 0 {
        return Err(S3Error::NotEmpty);
    }
    if out.key_count().unwrap_or(0) == 0 {
        return Err(S3Error::NotFound { op: "rmdir" });
    }
    target
        .client
        .delete_object()
        .bucket(&target.bucket)
        .key(marker)
        .send()
        .await
        .map_err(|e| S3Error::request("DeleteObject", e))?;
    Ok(())
}

/// Copy sources are URL-encoded; `/` stays as the separator.
fn urlencode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Ranged reads of one object; the size is fixed at open so reads past it are refused early.
pub struct S3Reader {
    target: Target,
    key: String,
    len: u64,
}

impl S3Reader {
    pub async fn open(target: &Target, key: &str) -> Result<S3Reader, S3Error> {
        let entry = stat(target, key).await?;
        Ok(S3Reader {
            target: target.clone(),
            key: full(target, key),
            len: entry.size,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the object).
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, S3Error> {
        if offset >= self.len || len == 0 {
            return Ok(Vec::new());
        }
        let end = (offset + len as u64).min(self.len) - 1;
        let out = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .range(format!("bytes={offset}-{end}"))
            .send()
            .await
            .map_err(|e| S3Error::request("GetObject", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| S3Error::Request {
                op: "GetObject",
                detail: format!("reading the body: {e}"),
            })?
            .into_bytes();
        if bytes.len() as u64 != end - offset + 1 {
            return Err(S3Error::Request {
                op: "GetObject",
                detail: format!(
                    "asked for {} bytes at {offset}, got {}",
                    end - offset + 1,
                    bytes.len()
                ),
            });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_encoding() {
        assert_eq!(super::urlencode_key("a/b c/ü.txt"), "a/b%20c/%C3%BC.txt");
    }
}

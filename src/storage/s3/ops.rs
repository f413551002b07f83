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
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = list_page(target, dir, token.take()).await?;
        entries.extend(page);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(entries)
}

/// One ListObjectsV2 page (up to 1,000 keys and common prefixes) of the entries directly below
/// `dir`, from continuation token `token`, and the token of the next page if there is one.
pub async fn list_page(
    target: &Target,
    dir: &str,
    token: Option<String>,
) -> Result<(Vec<S3Entry>, Option<String>), S3Error> {
    let prefix = if dir.is_empty() {
        target.prefix.clone()
    } else {
        format!("{}{}/", target.prefix, dir)
    };
    let mut entries = Vec::new();
    {
        let out = target
            .client
            .list_objects_v2()
            .bucket(&target.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .set_continuation_token(token)
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
        let next = match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => Some(t.to_string()),
            _ => None,
        };
        Ok((entries, next))
    }
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
///
/// Never replaces an existing object, as far as the store allows (docs/s3-notes.md, "Rename"):
/// the copy carries `If-None-Match: *`, which AWS S3 and others honour atomically (412 when the
/// key exists); stores that ignore it (Garage 2.5) are covered by the existence check before
/// and, after the copy, by checking that the object under `to` is still our copy before the
/// source is deleted. Callers serialise renames of one gateway on the keys ([`RenameLocks`]).
pub async fn rename(target: &Target, from: &str, to: &str) -> Result<(), S3Error> {
    let meta = stat(target, from).await?;
    if meta.size > 5 << 30 {
        return Err(S3Error::Request {
            op: "CopyObject",
            detail: "objects over 5 GiB cannot be renamed with a single copy".into(),
        });
    }
    // A directory (marker or prefix) under the new name counts as existing, as on a disk.
    if exists(target, to).await? || dir_exists(target, to).await? {
        return Err(S3Error::AlreadyExists);
    }
    let copied = copy_if_absent(target, from, to).await?;
    copy_survived(copied.as_deref(), head_etag(target, to).await?.as_deref())?;
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

/// Attempts of a conditional copy the store answered with 409 ConditionalRequestConflict
/// (a concurrent write to the same key; AWS asks to retry).
const CONFLICT_RETRIES: usize = 3;

/// CopyObject with `If-None-Match: *`; returns the new object's ETag when the store sends it.
/// 412 means the key exists. A store that refuses the header as not implemented (501) gets the
/// copy without it: then only the checks around it protect the target.
async fn copy_if_absent(target: &Target, from: &str, to: &str) -> Result<Option<String>, S3Error> {
    let source = format!("{}/{}", target.bucket, urlencode_key(&full(target, from)));
    let mut conditional = true;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = target
            .client
            .copy_object()
            .bucket(&target.bucket)
            .key(full(target, to))
            .copy_source(&source)
            .set_if_none_match(conditional.then(|| "*".to_string()))
            .send()
            .await;
        let err = match result {
            Ok(out) => {
                return Ok(out
                    .copy_object_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_string));
            }
            Err(e) => e,
        };
        match err.raw_response().map(|r| r.status().as_u16()) {
            Some(412) => return Err(S3Error::AlreadyExists),
            Some(409) if attempt < CONFLICT_RETRIES => continue,
            Some(409) => return Err(S3Error::AlreadyExists),
            Some(501) if conditional => {
                tracing::warn!(
                    bucket = target.bucket,
                    "the store does not implement If-None-Match on CopyObject; renames rely on \
                     checks around the copy"
                );
                conditional = false;
            }
            _ => return Err(S3Error::request("CopyObject", err)),
        }
    }
}

/// The ETag of `key`, `None` if it does not exist.
async fn head_etag(target: &Target, key: &str) -> Result<Option<String>, S3Error> {
    match target
        .client
        .head_object()
        .bucket(&target.bucket)
        .key(full(target, key))
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
        Err(e) => match S3Error::request("HeadObject", e) {
            S3Error::NotFound { .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// Whether the object now under the new name is still the copy just made (by ETag: sealed
/// objects never share content). A store that ignores If-None-Match lets a concurrent copy
/// replace ours: then the other rename won, and our source must stay.
fn copy_survived(ours: Option<&str>, now: Option<&str>) -> Result<(), S3Error> {
    match (ours, now) {
        (Some(ours), Some(now)) if unquote(ours) != unquote(now) => {
            tracing::warn!("rename lost a race: another copy replaced ours; the source stays");
            Err(S3Error::AlreadyExists)
        }
        (_, None) => Err(S3Error::Request {
            op: "CopyObject",
            detail: "the copy vanished from the new name before the source was deleted; \
                     the source stays"
                .into(),
        }),
        // Same ETag, or the store sent none with the copy (nothing to compare).
        _ => Ok(()),
    }
}

fn unquote(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// Serialises renames within one gateway on the keys they touch, so that on stores that ignore
/// `If-None-Match` two renames onto one name cannot both pass the existence check. Striped: a
/// fixed number of locks whatever the number of keys (bounded memory).
pub struct RenameLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

const RENAME_STRIPES: usize = 64;

impl Default for RenameLocks {
    fn default() -> Self {
        RenameLocks {
            stripes: (0..RENAME_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: Default::default(),
        }
    }
}

impl RenameLocks {
    /// Holds the locks of both keys (in stripe order, so two renames cannot deadlock).
    pub async fn lock(&self, a: &str, b: &str) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        use std::hash::BuildHasher;
        let i = self.hasher.hash_one(a) as usize % RENAME_STRIPES;
        let j = self.hasher.hash_one(b) as usize % RENAME_STRIPES;
        let mut order = vec![i.min(j), i.max(j)];
        order.dedup();
        let mut guards = Vec::with_capacity(2);
        for k in order {
            guards.push(self.stripes[k].lock().await);
        }
        guards
    }
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
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<bytes::Bytes, S3Error> {
        self.read_into(offset, len, bytes::BytesMut::new()).await
    }

    /// [`S3Reader::read_at`] into `buf` (cleared first): a caller that gives back the buffer
    /// of an earlier read saves the allocation, and with it the kernel's zeroing of fresh pages,
    /// which cost more than the decryption on downloads (docs/benchmarks.md).
    pub async fn read_into(
        &self,
        offset: u64,
        len: usize,
        mut buf: bytes::BytesMut,
    ) -> Result<bytes::Bytes, S3Error> {
        buf.clear();
        if offset >= self.len || len == 0 {
            return Ok(buf.freeze());
        }
        let end = (offset + len as u64).min(self.len) - 1;
        let want = (end - offset + 1) as usize;
        let mut body = self
            .target
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .range(format!("bytes={offset}-{end}"))
            .send()
            .await
            .map_err(|e| S3Error::request("GetObject", e))?
            .body;
        buf.reserve(want);
        let short = |got: usize| S3Error::Request {
            op: "GetObject",
            detail: format!("asked for {want} bytes at {offset}, got {got}"),
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| S3Error::Request {
                op: "GetObject",
                detail: format!("reading the body: {e}"),
            })?;
            if buf.len() + chunk.len() > want {
                return Err(short(buf.len() + chunk.len()));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() != want {
            return Err(short(buf.len()));
        }
        Ok(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::{S3Error, copy_survived};

    #[test]
    fn a_replaced_copy_keeps_the_source() {
        assert!(copy_survived(Some("\"e1\""), Some("e1")).is_ok());
        assert!(copy_survived(None, Some("\"e1\"")).is_ok());
        assert!(matches!(
            copy_survived(Some("\"e1\""), Some("\"e2\"")),
            Err(S3Error::AlreadyExists)
        ));
        assert!(matches!(
            copy_survived(Some("e1"), None),
            Err(S3Error::Request { .. })
        ));
    }

    #[test]
    fn copy_source_encoding() {
        assert_eq!(super::urlencode_key("a/b c/ü.txt"), "a/b%20c/%C3%BC.txt");
    }
}

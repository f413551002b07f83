//! The new-proposal form as fields, from either encoding: `application/x-www-form-urlencoded`
//! (no upload) or `multipart/form-data` (with `bundle_files`), parsed by multer with limits.

use bytes::Bytes;

use crate::console::proposals::names::{MAX_BUNDLE_BYTES, MAX_FILE_BYTES, MAX_FILES};
use crate::console::{ConsoleError, Ctx};

/// What the form sent.
#[derive(Debug, Default)]
pub struct Submission {
    pub file: Option<String>,
    pub new_file: Option<String>,
    pub content: Option<String>,
    pub summary: String,
    pub delete: bool,
    /// Uploaded files: the name the browser sent, and the bytes.
    pub uploads: Vec<(String, Vec<u8>)>,
}

const FIELDS: [&str; 7] = [
    "csrf",
    "file",
    "new_file",
    "content",
    "summary",
    "delete",
    "bundle_files",
];

pub async fn read(ctx: &Ctx<'_>) -> Result<Submission, ConsoleError> {
    let ct = ctx.content_type.as_deref().unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        return read_multipart(ct, ctx.body.clone()).await;
    }
    let f = &ctx.form;
    let text = |n: &str| f.non_empty(n).map(str::to_string);
    Ok(Submission {
        file: text("file"),
        new_file: text("new_file"),
        content: f.get("content").map(str::to_string),
        summary: f.non_empty("summary").unwrap_or("").to_string(),
        delete: f.non_empty("delete").is_some(),
        uploads: Vec::new(),
    })
}

async fn read_multipart(ct: &str, body: Bytes) -> Result<Submission, ConsoleError> {
    let bad =
        |e: multer::Error| ConsoleError::BadRequest(format!("the upload cannot be read: {e}"));
    let boundary = multer::parse_boundary(ct).map_err(bad)?;
    let limits = multer::SizeLimit::new()
        .whole_stream(MAX_BUNDLE_BYTES as u64 + (64 << 10))
        .per_field(MAX_FILE_BYTES as u64);
    let constraints = multer::Constraints::new()
        .allowed_fields(FIELDS.to_vec())
        .size_limit(limits);
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut s = Submission::default();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(bad)?;
        if name == "bundle_files" {
            // An empty file input still sends one part, without a name or bytes.
            let file_name = file_name.unwrap_or_default();
            if file_name.is_empty() && data.is_empty() {
                continue;
            }
            if s.uploads.len() >= MAX_FILES {
                return Err(ConsoleError::BadRequest(format!(
                    "at most {MAX_FILES} files can be uploaded"
                )));
            }
            s.uploads.push((file_name, data.to_vec()));
            continue;
        }
        let text = String::from_utf8(data.to_vec())
            .map_err(|_| ConsoleError::BadRequest(format!("the field {name} is not UTF-8 text")))?;
        let non_empty = || Some(text.trim().to_string()).filter(|t| !t.is_empty());
        match name.as_str() {
            "file" => s.file = non_empty(),
            "new_file" => s.new_file = non_empty(),
            "content" => s.content = Some(text.clone()),
            "summary" => s.summary = text.trim().to_string(),
            "delete" => s.delete = non_empty().is_some(),
            _ => {}
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, Option<&str>, &str)]) -> Bytes {
        let mut b = String::new();
        for (name, file, data) in parts {
            b.push_str("--XyZ\r\n");
            match file {
                Some(f) => b.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )),
                None => b.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")),
            }
            b.push_str(data);
            b.push_str("\r\n");
        }
        b.push_str("--XyZ--\r\n");
        Bytes::from(b)
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[tokio::test]
    async fn fields_and_uploads_are_read() {
        let b = body(&[
            ("summary", None, " forbid DE "),
            ("file", None, "default.cedar"),
            ("content", None, "a\r\nb"),
            (
                "bundle_files",
                Some("x.cedar"),
                "permit(principal, action, resource);",
            ),
            ("bundle_files", Some(""), ""),
        ]);
        let s = read_multipart(CT, b).await.unwrap();
        assert_eq!(s.summary, "forbid DE");
        assert_eq!(s.file.as_deref(), Some("default.cedar"));
        assert_eq!(s.content.as_deref(), Some("a\r\nb"));
        assert_eq!(s.uploads.len(), 1);
        assert_eq!(s.uploads[0].0, "x.cedar");
    }

    #[tokio::test]
    async fn unknown_fields_oversize_and_garbage_are_refused() {
        let b = body(&[("evil", None, "x")]);
        assert!(read_multipart(CT, b).await.is_err());
        let big = "x".repeat(MAX_FILE_BYTES + 1);
        let b = body(&[("bundle_files", Some("a.cedar"), &big)]);
        assert!(read_multipart(CT, b).await.is_err());
        assert!(
            read_multipart(CT, Bytes::from_static(b"--XyZ\r\nnonsense"))
                .await
                .is_err()
        );
        assert!(
            read_multipart("multipart/form-data", Bytes::new())
                .await
                .is_err()
        );
    }
}

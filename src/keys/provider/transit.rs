//! OpenBao / HashiCorp Vault Transit: a key is wrapped by `POST /v1/{mount}/encrypt/{key}` and
//! unwrapped by `POST /v1/{mount}/decrypt/{key}`; the Transit key never leaves the server.
//!
//! - `context` goes to the server as `associated_data` (AES-GCM AAD of `aes256-gcm96` keys):
//!   another context, an altered blob or a blob of another key fails as
//!   [`ProviderError::WrongKey`].
//! - The blob is the server's ciphertext string (`vault:vN:...`); `key_version` is its `N`.
//! - The token is read from a private file (0600), kept in zeroized memory and sent only as the
//!   `X-Vault-Token` header (marked sensitive); it is never logged or put in an error.
//! - `https://` needs `ca_bundle` (the system's roots are not used); `http://` is accepted only
//!   for a loopback address.
//! - One connection per call, each call (wrap, unwrap) bounded by the configured timeout.
//!
//! The token's policy should grant `update` (not `create`) on `{mount}/encrypt/{key}` and
//! `{mount}/decrypt/{key}`: with `create` (or a root token) the server creates a missing key on
//! encrypt, so a deleted key would silently come back as a new one.
//!
//! Zeroization is best effort for our own buffers (request body, token header, response body);
//! hyper's and rustls' internal I/O buffers are not under our control.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use super::{
    KeyProvider, MAX_BLOB_LEN, ProviderConfig, ProviderError, ProviderKind, ProviderSettings,
    WRAPPED_KEY_LEN, Wrapped,
};

/// The largest answer read from the server; Transit answers here are a few hundred bytes.
const MAX_RESPONSE: usize = 64 * 1024;

/// The longest piece of a server's error text put into an error message.
const MAX_REASON: usize = 300;

enum Transport {
    Http,
    Https {
        connector: tokio_rustls::TlsConnector,
        server_name: rustls::pki_types::ServerName<'static>,
    },
}

/// A Transit key on an OpenBao or Vault server.
pub struct TransitProvider {
    key_ref: String,
    transport: Transport,
    /// Host as written in the address (brackets kept for IPv6), for `Host:` and resolution.
    host: String,
    port: u16,
    /// `host[:port]` as in the address, the `Host:` header.
    authority: String,
    encrypt_path: String,
    decrypt_path: String,
    token: Zeroizing<String>,
    namespace: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for TransitProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitProvider")
            .field("key_ref", &self.key_ref)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TransitProvider {
    /// Checks the settings and reads the token; no network call (`probe` makes one).
    pub async fn connect(cfg: &ProviderConfig) -> Result<TransitProvider, ProviderError> {
        let ProviderSettings::Transit(t) = &cfg.settings else {
            return Err(cfg.wrong_kind(ProviderKind::Transit));
        };
        let address = t.address.trim_end_matches('/').to_string();
        let key_ref = format!("transit:{address}/{}/keys/{}", t.mount, t.key);
        let config = |reason: String| ProviderError::Config {
            key_ref: key_ref.clone(),
            reason,
        };

        let uri: Uri = address
            .parse()
            .map_err(|e| config(format!("address `{address}` is not a URL ({e})")))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(config(format!(
                "address `{address}` needs a scheme and host, e.g. https://bao.example:8200"
            )));
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(config(format!(
                "address `{address}` must be scheme://host:port only, without a path"
            )));
        }
        if authority.as_str().contains('@') {
            return Err(config(format!(
                "address `{address}` must not carry user information"
            )));
        }
        let host = authority.host().to_string();
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let transport = match scheme {
            "http" => {
                if !is_loopback_name(bare_host) {
                    return Err(config(format!(
                        "http:// is accepted only for a loopback address (127.0.0.1, ::1, localhost), not `{host}`; use https:// with ca_bundle"
                    )));
                }
                if let Some(ca) = &t.ca_bundle {
                    return Err(config(format!(
                        "ca_bundle ({}) is set but the address is http://; use https://",
                        ca.display()
                    )));
                }
                Transport::Http
            }
            "https" => {
                let Some(ca) = &t.ca_bundle else {
                    return Err(config(
                        "https:// needs ca_bundle (PEM CA certificates to trust; the system's roots are not used)".into(),
                    ));
                };
                let connector = tls_connector(ca).map_err(config)?;
                let server_name = rustls::pki_types::ServerName::try_from(bare_host.to_string())
                    .map_err(|e| config(format!("`{host}` is not a TLS server name ({e})")))?;
                Transport::Https {
                    connector,
                    server_name,
                }
            }
            other => {
                return Err(config(format!(
                    "address scheme `{other}` is not supported; use https:// (or http:// on loopback)"
                )));
            }
        };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });

        let mount = t.mount.trim_matches('/');
        if mount.is_empty() || !mount.split('/').all(valid_segment) {
            return Err(config(format!(
                "mount `{}` must be path segments of letters, digits, `-`, `_` and `.`",
                t.mount
            )));
        }
        if !valid_segment(&t.key) {
            return Err(config(format!(
                "key `{}` must be letters, digits, `-`, `_` and `.`",
                t.key
            )));
        }

        let token = read_token(&t.token_file).map_err(config)?;
        let namespace = match &t.namespace {
            None => None,
            Some(ns) => Some(
                HeaderValue::from_str(ns)
                    .map_err(|_| config(format!("namespace `{ns}` is not a valid header value")))?,
            ),
        };

        Ok(TransitProvider {
            key_ref: key_ref.clone(),
            transport,
            host: bare_host.to_string(),
            port,
            authority: authority.as_str().to_string(),
            encrypt_path: format!("/v1/{mount}/encrypt/{}", t.key),
            decrypt_path: format!("/v1/{mount}/decrypt/{}", t.key),
            token,
            namespace,
            timeout: cfg.timeout,
        })
    }

    fn err_timeout(&self) -> ProviderError {
        ProviderError::Timeout {
            key_ref: self.key_ref.clone(),
            after: self.timeout,
        }
    }

    fn unreachable(&self, reason: String) -> ProviderError {
        ProviderError::Unreachable {
            key_ref: self.key_ref.clone(),
            reason,
        }
    }

    fn protocol(&self, reason: String) -> ProviderError {
        ProviderError::Protocol {
            key_ref: self.key_ref.clone(),
            reason,
        }
    }

    fn wrong_key(&self, reason: String) -> ProviderError {
        ProviderError::WrongKey {
            key_ref: self.key_ref.clone(),
            reason,
        }
    }

    /// One POST with a JSON body; the status and the (capped) answer.
    async fn post(
        &self,
        path: &str,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), ProviderError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_owner(body)))
            .map_err(|e| self.protocol(format!("cannot build the request ({e})")))?;
        let mut token = HeaderValue::from_maybe_shared(Bytes::from_owner(Zeroizing::new(
            self.token.as_bytes().to_vec(),
        )))
        .map_err(|_| self.protocol("the token is not a valid header value".into()))?;
        token.set_sensitive(true);
        req.headers_mut().insert("x-vault-token", token);
        if let Some(ns) = &self.namespace {
            req.headers_mut().insert("x-vault-namespace", ns.clone());
        }

        let addrs = self.resolve().await?;
        let tcp = TcpStream::connect(&addrs[..])
            .await
            .map_err(|e| self.unreachable(format!("connecting to {}: {e}", self.authority)))?;
        let _ = tcp.set_nodelay(true);
        match &self.transport {
            Transport::Http => self.exchange(tcp, req).await,
            Transport::Https {
                connector,
                server_name,
            } => {
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| {
                        if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                            self.protocol(format!(
                                "TLS handshake with {} failed: {e}",
                                self.authority
                            ))
                        } else {
                            self.unreachable(format!("TLS handshake with {}: {e}", self.authority))
                        }
                    })?;
                self.exchange(tls, req).await
            }
        }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, ProviderError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(format!("cannot resolve {}: {e}", self.host)))?
            // http:// was accepted for a loopback name: never let it go anywhere else.
            .filter(|a| matches!(self.transport, Transport::Https { .. }) || a.ip().is_loopback())
            .collect();
        if addrs.is_empty() {
            return Err(self.unreachable(format!("{} resolves to no usable address", self.host)));
        }
        Ok(addrs)
    }

    async fn exchange<IO>(
        &self,
        io: IO,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), ProviderError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.unreachable(format!("HTTP handshake: {e}")))?;
        // The connection runs beside the request; dropped (timeout, error, done) it is aborted.
        let _conn = AbortOnDrop(tokio::spawn(conn));
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(format!("connection lost: {e}")))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut out = Zeroizing::new(Vec::with_capacity(4096));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.unreachable(format!("connection lost: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > MAX_RESPONSE {
                    return Err(self.protocol(format!(
                        "HTTP {status}: answer larger than {} KiB",
                        MAX_RESPONSE / 1024
                    )));
                }
                if out.len() + data.len() > out.capacity() {
                    // Grow by hand so no unzeroized copy is left behind by a reallocation.
                    let mut bigger = Zeroizing::new(Vec::with_capacity(
                        (out.capacity() * 2).max(out.len() + data.len()),
                    ));
                    bigger.extend_from_slice(&out);
                    out = bigger;
                }
                out.extend_from_slice(&data);
            }
        }
        Ok((status, out))
    }

    /// An error answer, typed by what the server said.
    fn classify(&self, status: StatusCode, body: &[u8]) -> ProviderError {
        let text = self.server_text(body);
        let reason = format!("HTTP {}: {text}", status.as_u16());
        let key_ref = self.key_ref.clone();
        let lower = text.to_ascii_lowercase();
        if status == StatusCode::FORBIDDEN || lower.contains("permission denied") {
            ProviderError::Denied { key_ref, reason }
        } else if lower.contains("encryption key not found") {
            ProviderError::KeyNotFound { key_ref, reason }
        } else if lower.contains("disallowed by policy") || lower.contains("too old") {
            ProviderError::Revoked { key_ref, reason }
        } else if lower.contains("message authentication failed")
            || lower.contains("invalid ciphertext")
            || lower.contains("version is too new")
        {
            ProviderError::WrongKey { key_ref, reason }
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            // Sealed, or a standby without an active node: not there for now.
            ProviderError::Unreachable { key_ref, reason }
        } else {
            ProviderError::Protocol { key_ref, reason }
        }
    }

    /// The server's `errors` (or its raw text), one line, bounded, without the token.
    fn server_text(&self, body: &[u8]) -> String {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<String>,
        }
        let raw = match serde_json::from_slice::<Errors>(body) {
            Ok(e) if !e.errors.is_empty() => e.errors.join("; "),
            Ok(_) => "(no error text)".to_string(),
            Err(_) => String::from_utf8_lossy(body).into_owned(),
        };
        let mut text = raw
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !self.token.is_empty() && text.contains(self.token.as_str()) {
            text = text.replace(self.token.as_str(), "<token>");
        }
        if text.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        if text.is_empty() {
            "(no error text)".into()
        } else {
            text
        }
    }

    async fn wrap_inner(
        &self,
        key: &Zeroizing<[u8; WRAPPED_KEY_LEN]>,
        context: &[u8],
    ) -> Result<Wrapped, ProviderError> {
        let plaintext = Zeroizing::new(B64.encode(&key[..]));
        let aad = B64.encode(context);
        // Base64 needs no JSON escaping. Sized up front: no reallocation leaves a copy behind.
        let (a, b, c) = (r#"{"plaintext":""#, r#"","associated_data":""#, r#""}"#);
        let mut body = Zeroizing::new(Vec::with_capacity(
            a.len() + plaintext.len() + b.len() + aad.len() + c.len(),
        ));
        for part in [a, plaintext.as_str(), b, aad.as_str(), c] {
            body.extend_from_slice(part.as_bytes());
        }
        let (status, answer) = self.post(&self.encrypt_path, body).await?;
        if status == StatusCode::FORBIDDEN {
            return Err(self.why_encrypt_denied(status, &answer).await);
        }
        if !status.is_success() {
            return Err(self.classify(status, &answer));
        }

        #[derive(serde::Deserialize)]
        struct Answer {
            data: Data,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            ciphertext: String,
            key_version: Option<u32>,
        }
        let answer: Answer = serde_json::from_slice(&answer)
            .map_err(|e| self.protocol(format!("encrypt answer is not understood ({e})")))?;
        let ciphertext = answer.data.ciphertext;
        let Some(version) = ciphertext_version(&ciphertext) else {
            return Err(self.protocol(format!(
                "encrypt answered a ciphertext without a vault:vN: prefix ({} bytes)",
                ciphertext.len()
            )));
        };
        if answer.data.key_version.is_some_and(|v| v != version) {
            return Err(self.protocol(format!(
                "encrypt answered key_version {:?} for a v{version} ciphertext",
                answer.data.key_version
            )));
        }
        if ciphertext.len() > MAX_BLOB_LEN {
            return Err(self.protocol(format!(
                "the ciphertext is {} bytes, more than {MAX_BLOB_LEN}",
                ciphertext.len()
            )));
        }
        Ok(Wrapped {
            key_version: version,
            blob: ciphertext.into_bytes(),
        })
    }

    /// Encrypt answers 403 both when the token may not use the key and when the key does not
    /// exist (creating it needs `create`). A decrypt tells them apart: it never creates a key,
    /// and says "encryption key not found".
    async fn why_encrypt_denied(&self, status: StatusCode, answer: &[u8]) -> ProviderError {
        let denied = self.classify(status, answer);
        // 12 zero nonce bytes + 16 zero tag bytes: well formed, never valid.
        let probe = format!(r#"{{"ciphertext":"vault:v1:{}"}}"#, B64.encode([0u8; 28]));
        match self
            .post(&self.decrypt_path, Zeroizing::new(probe.into_bytes()))
            .await
        {
            Ok((s, body)) => match self.classify(s, &body) {
                e @ ProviderError::KeyNotFound { .. } => e,
                _ => denied,
            },
            Err(_) => denied,
        }
    }

    async fn unwrap_inner(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(self.wrong_key(format!(
                "the blob is {} bytes, more than {MAX_BLOB_LEN}",
                blob.len()
            )));
        }
        // A Transit ciphertext is `vault:vN:` and base64: anything else was not made here, and
        // checking the alphabet also keeps the JSON below free of characters to escape.
        let ciphertext = std::str::from_utf8(blob)
            .ok()
            .filter(|s| ciphertext_version(s).is_some())
            .filter(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b':'))
            })
            .ok_or_else(|| self.wrong_key("the blob is not a Transit ciphertext".into()))?;
        let aad = B64.encode(context);
        let body = format!(r#"{{"ciphertext":"{ciphertext}","associated_data":"{aad}"}}"#);
        let (status, answer) = self
            .post(&self.decrypt_path, Zeroizing::new(body.into_bytes()))
            .await?;
        if !status.is_success() {
            return Err(self.classify(status, &answer));
        }

        #[derive(serde::Deserialize)]
        struct Answer {
            data: Data,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            plaintext: Zeroizing<String>,
        }
        let answer: Answer = serde_json::from_slice(&answer)
            .map_err(|_| self.protocol("decrypt answer is not understood".into()))?;
        let mut buf = Zeroizing::new([0u8; WRAPPED_KEY_LEN + 16]);
        let n = B64
            .decode_slice(answer.data.plaintext.as_bytes(), &mut buf[..])
            .map_err(|_| self.protocol("decrypt answered a plaintext that is not base64".into()))?;
        if n != WRAPPED_KEY_LEN {
            return Err(self.wrong_key(format!(
                "the unwrapped key is {n} bytes, not {WRAPPED_KEY_LEN}"
            )));
        }
        let mut key = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
        key.copy_from_slice(&buf[..WRAPPED_KEY_LEN]);
        Ok(key)
    }
}

#[async_trait::async_trait]
impl KeyProvider for TransitProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Transit
    }

    fn key_ref(&self) -> String {
        self.key_ref.clone()
    }

    async fn wrap(
        &self,
        key: &Zeroizing<[u8; WRAPPED_KEY_LEN]>,
        context: &[u8],
    ) -> Result<Wrapped, ProviderError> {
        let result = tokio::time::timeout(self.timeout, self.wrap_inner(key, context))
            .await
            .map_err(|_| self.err_timeout())?;
        if let Err(e) = &result {
            tracing::debug!(key_ref = %self.key_ref, error = %e, "transit wrap failed");
        }
        result
    }

    async fn unwrap(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError> {
        let result = tokio::time::timeout(self.timeout, self.unwrap_inner(blob, context))
            .await
            .map_err(|_| self.err_timeout())?;
        if let Err(e) = &result {
            tracing::debug!(key_ref = %self.key_ref, error = %e, "transit unwrap failed");
        }
        result
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `N` of a `vault:vN:...` ciphertext (N ≥ 1).
fn ciphertext_version(ciphertext: &str) -> Option<u32> {
    let rest = ciphertext.strip_prefix("vault:v")?;
    let (n, data) = rest.split_once(':')?;
    if data.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&v| v >= 1)
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The token file: private to its owner (else refused, naming it), one non-empty token.
fn read_token(path: &Path) -> Result<Zeroizing<String>, String> {
    let raw = crate::keys::private_file::read(path).map_err(|e| format!("token file: {e}"))?;
    let text = std::str::from_utf8(&raw)
        .map_err(|_| format!("token file {}: not text", path.display()))?
        .trim();
    if text.is_empty() {
        return Err(format!("token file {}: empty", path.display()));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "token file {}: holds more than one token-like word or non-ASCII characters",
            path.display()
        ));
    }
    let mut token = Zeroizing::new(String::with_capacity(text.len()));
    token.push_str(text);
    Ok(token)
}

fn tls_connector(ca: &Path) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::tls::certificates(ca).map_err(|e| format!("ca_bundle {e}"))? {
        roots.add(cert).map_err(|e| {
            format!(
                "ca_bundle {}: not a usable CA certificate: {e}",
                ca.display()
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_versions() {
        assert_eq!(ciphertext_version("vault:v1:abc="), Some(1));
        assert_eq!(ciphertext_version("vault:v42:abc="), Some(42));
        assert_eq!(ciphertext_version("vault:v0:abc="), None);
        assert_eq!(ciphertext_version("vault:v:abc="), None);
        assert_eq!(ciphertext_version("vault:v1:"), None);
        assert_eq!(ciphertext_version("vault:v+1:abc"), None);
        assert_eq!(ciphertext_version("vault:v99999999999:abc"), None);
        assert_eq!(ciphertext_version("abc"), None);
    }

    #[test]
    fn loopback_names() {
        assert!(is_loopback_name("127.0.0.1"));
        assert!(is_loopback_name("127.8.9.10"));
        assert!(is_loopback_name("::1"));
        assert!(is_loopback_name("LocalHost"));
        assert!(!is_loopback_name("10.0.0.1"));
        assert!(!is_loopback_name("localhost.example"));
        assert!(!is_loopback_name("bao.example"));
    }

    #[test]
    fn path_segments() {
        assert!(valid_segment("transit"));
        assert!(valid_segment("eugate-master_1.v2"));
        assert!(!valid_segment(".."));
        assert!(!valid_segment(""));
        assert!(!valid_segment("a/b"));
        assert!(!valid_segment("a?b"));
        assert!(!valid_segment("a b"));
    }
}

//! The compliance console (issue 16): server-rendered pages on the admin listener for
//! compliance officers, who log in with client certificates. Layers, as in the admin listener:
//! `Console::handle` identifies the officer, reads and checks the request (body limit, CSRF),
//! `routes` picks the page, `pages::*` render with maud, `page` wraps them in the layout and
//! the security headers. Every act that changes something, and every refusal of a presented
//! certificate, is an audit record naming the officer.

mod assets;
mod csrf;
mod error;
mod officer;
pub mod page;
pub mod pages;
mod params;
pub mod proposals;
mod routes;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;

pub use error::{ConsoleError, ConsoleSetupError};
pub use officer::{Officer, Refusal};
pub use page::Reply;
pub use params::Params;

use crate::audit::AuditEvent;
use crate::config::{Config, ConsoleConfig, OfficerRole};
use crate::transfer::Gateway;

/// The largest request body: a policy bundle upload is a few tens of KiB.
const MAX_BODY: usize = 4 << 20;

pub struct Console {
    config: ConsoleConfig,
    gateway: Arc<Gateway>,
    /// `[policy] dir`; `None` (the embedded bundle) means nothing to approve changes into.
    policy_dir: Option<PathBuf>,
    /// This gateway's own audit log.
    audit_file: PathBuf,
    identify: officer::Identify,
    csrf: csrf::CsrfKey,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("officers", &self.config.officers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One act for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Act {
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub old_bundle: Option<String>,
    pub new_bundle: Option<String>,
}

impl Console {
    /// `None` without `[console]`. Reads the officers' CA now, so a bad file stops the start.
    pub fn new(
        config: &Config,
        gateway: Arc<Gateway>,
    ) -> Result<Option<Arc<Console>>, ConsoleSetupError> {
        let Some(k) = &config.console else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            crate::admin::tls::client_verifier(&[k.client_ca.as_path()], true, provider)?;
        Ok(Some(Arc::new(Console {
            config: k.clone(),
            gateway,
            policy_dir: config.policy.dir.clone(),
            audit_file: config.audit.file.clone(),
            identify: officer::Identify { verifier },
            csrf: csrf::CsrfKey::generate(),
        })))
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.config
    }

    pub fn client_ca(&self) -> &Path {
        &self.config.client_ca
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    pub fn policy_dir(&self) -> Option<&Path> {
        self.policy_dir.as_deref()
    }

    /// This gateway's audit log first, then `[console] audit_logs`.
    pub fn audit_files(&self) -> Vec<PathBuf> {
        std::iter::once(self.audit_file.clone())
            .chain(self.config.audit_logs.iter().cloned())
            .collect()
    }

    /// Appends `act` by `officer` to the audit log. An act that changes something must not
    /// happen unrecorded, so callers stop on an error.
    pub fn record(&self, officer: &Officer, act: Act) -> Result<(), ConsoleError> {
        let event = AuditEvent::Console {
            officer: officer.name.clone(),
            certificate: officer.fingerprint.clone(),
            action: act.action,
            target: act.target,
            outcome: act.outcome,
            detail: act.detail,
            old_bundle: act.old_bundle,
            new_bundle: act.new_bundle,
        };
        self.gateway
            .audit_log()
            .append(&event)
            .map(|_| ())
            .map_err(|e| {
                ConsoleError::Internal(format!(
                    "the audit log is unavailable, so nothing was done: {e}"
                ))
            })
    }

    /// Answers one request to `/console…`; `chain` is the client's certificate chain.
    pub async fn handle<B>(
        &self,
        chain: &[CertificateDer<'static>],
        req: Request<B>,
    ) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let officer = match self.identify.officer(&self.config, chain) {
            Ok(o) => o,
            Err(refusal) => return self.refuse(&refusal),
        };
        let (parts, body) = req.into_parts();
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::POST) {
            return page::error_page(None, StatusCode::METHOD_NOT_ALLOWED, "GET or POST only");
        }
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let msg = format!(
                    "the request body could not be read (at most {} MiB): {e}",
                    MAX_BODY >> 20
                );
                return page::error_page(None, StatusCode::PAYLOAD_TOO_LARGE, &msg);
            }
        };
        let path = parts.uri.path();
        if let Some(name) = path.strip_prefix("/console/static/") {
            return match assets::get(name) {
                Some((ct, text)) => {
                    page::response(StatusCode::OK, ct, Bytes::from_static(text.as_bytes()))
                }
                None => page::error_page(None, StatusCode::NOT_FOUND, "no such file"),
            };
        }
        let content_type = header_text(&parts.headers, hyper::header::CONTENT_TYPE);
        let form = match content_type.as_deref() {
            Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => Params::parse(&body),
            _ => Params::default(),
        };
        let ctx = Ctx {
            console: self,
            officer: &officer,
            method: parts.method.clone(),
            path,
            query: Params::parse(parts.uri.query().unwrap_or("").as_bytes()),
            form,
            body,
            content_type,
            htmx: parts.headers.contains_key("hx-request"),
        };
        if ctx.method == Method::POST
            && let Err(e) = self.check_post(&ctx, &parts.headers)
        {
            return page::error_page(Some(&ctx), e.status(), &e.to_string());
        }
        match routes::route(&ctx).await {
            Ok(reply) => page::respond(&ctx, reply),
            Err(e) => page::error_page(Some(&ctx), e.status(), &e.to_string()),
        }
    }

    fn refuse(&self, refusal: &Refusal) -> Response<Full<Bytes>> {
        tracing::warn!(reason = %refusal, "console request refused");
        if let Refusal::NotAnOfficer {
            fingerprint,
            subject,
        } = refusal
        {
            let nobody = Officer {
                name: String::new(),
                roles: Default::default(),
                fingerprint: fingerprint.clone(),
            };
            let act = Act {
                action: "login".into(),
                target: subject.clone(),
                outcome: "refused".into(),
                detail: "certificate not listed for any officer".into(),
                ..Act::default()
            };
            if let Err(e) = self.record(&nobody, act) {
                tracing::error!(error = %e, "console refusal not recorded");
            }
        }
        page::error_page(None, StatusCode::FORBIDDEN, &refusal.to_string())
    }

    /// A POST must come from the console's own page: same site, and the officer's token.
    fn check_post(&self, ctx: &Ctx<'_>, headers: &hyper::HeaderMap) -> Result<(), ConsoleError> {
        let host = header_text(headers, hyper::header::HOST);
        if csrf::cross_site(headers, host.as_deref()) {
            return Err(ConsoleError::Forbidden(
                "refused: the request came from another site".into(),
            ));
        }
        let token = ctx
            .form
            .get("csrf")
            .or_else(|| ctx.query.get("csrf"))
            .map(str::to_string)
            .or_else(|| header_text(headers, "x-csrf-token"));
        match token {
            Some(t) if self.csrf.verify(&ctx.officer.fingerprint, &t) => Ok(()),
            Some(_) => Err(ConsoleError::Forbidden(
                "refused: the form's security token is wrong; reload the page and submit again"
                    .into(),
            )),
            None => Err(ConsoleError::Forbidden(
                "refused: the form has no security token; submit it from the console's own page"
                    .into(),
            )),
        }
    }
}

fn header_text(
    headers: &hyper::HeaderMap,
    name: impl hyper::header::AsHeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// One request as a page handler sees it.
pub struct Ctx<'a> {
    pub console: &'a Console,
    pub officer: &'a Officer,
    pub method: Method,
    pub path: &'a str,
    pub query: Params,
    /// The urlencoded form of a POST (empty otherwise; CSRF already checked).
    pub form: Params,
    /// The raw body, for multipart uploads.
    pub body: Bytes,
    pub content_type: Option<String>,
    /// Sent by htmx: answer with the page's body only.
    pub htmx: bool,
}

impl Ctx<'_> {
    /// Refuses, naming the role, unless the officer has it.
    pub fn require(&self, role: OfficerRole) -> Result<(), ConsoleError> {
        if self.officer.has(role) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(format!(
                "this needs the {} role; {} has {}",
                role.as_str(),
                self.officer.name,
                self.officer.roles_text()
            )))
        }
    }

    pub fn csrf_token(&self) -> String {
        self.console.csrf.token(&self.officer.fingerprint)
    }

    /// Appends an act by this request's officer to the audit log.
    pub fn record(&self, act: Act) -> Result<(), ConsoleError> {
        self.console.record(self.officer, act)
    }
}

//! What a console handler returns, and how it becomes an HTTP response: every HTML page in one
//! layout, every response with the same security headers (a strict CSP with no inline script
//! or style, no framing, no caching, no referrer).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use maud::{DOCTYPE, Markup, html};

use super::Ctx;

/// No inline script or style, nothing from elsewhere, no framing, forms only to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages in the navigation bar: path and label.
const NAV: &[(&str, &str)] = &[
    ("/console/matrix", "Residency matrix"),
    ("/console/explain", "Explain"),
    ("/console/policies", "Policies"),
    ("/console/proposals", "Proposals"),
    ("/console/destinations", "Destinations"),
    ("/console/audit", "Audit"),
    ("/console/register", "Transfer register"),
];

/// A handler's answer.
#[derive(Debug)]
pub enum Reply {
    /// A whole page in the layout (or only `body`, for an htmx request).
    Page { title: String, body: Markup },
    /// A page in the layout answering a request with bad input (400): the form again, with
    /// what is wrong.
    Invalid { title: String, body: Markup },
    /// A piece of HTML for htmx to swap in.
    Fragment(Markup),
    /// A file to save: CSV, JSON.
    Download {
        content_type: &'static str,
        filename: String,
        body: Vec<u8>,
    },
    /// After a successful POST: go to `location` (303, so reloading does not resubmit).
    SeeOther(String),
}

impl Reply {
    pub fn page(title: impl Into<String>, body: Markup) -> Reply {
        Reply::Page {
            title: title.into(),
            body,
        }
    }
}

pub(super) fn respond(ctx: &Ctx<'_>, reply: Reply) -> Response<Full<Bytes>> {
    match reply {
        Reply::Page { body, .. } if ctx.htmx => html_response(StatusCode::OK, body),
        Reply::Page { title, body } => {
            html_response(StatusCode::OK, layout(Some(ctx), &title, body))
        }
        Reply::Invalid { body, .. } if ctx.htmx => html_response(StatusCode::BAD_REQUEST, body),
        Reply::Invalid { title, body } => {
            html_response(StatusCode::BAD_REQUEST, layout(Some(ctx), &title, body))
        }
        Reply::Fragment(body) => html_response(StatusCode::OK, body),
        Reply::Download {
            content_type,
            filename,
            body,
        } => {
            let mut r = response(StatusCode::OK, content_type, body.into());
            // The name is ours (ASCII, no quotes), never a client's.
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Reply::SeeOther(location) => {
            let mut r = response(
                StatusCode::SEE_OTHER,
                "text/plain; charset=utf-8",
                Bytes::new(),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

/// An error or refusal as a page (without navigation when nobody is logged in).
pub(super) fn error_page(
    ctx: Option<&Ctx<'_>>,
    status: StatusCode,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.error { (message) }
    };
    match ctx {
        Some(c) if c.htmx => html_response(status, body),
        _ => html_response(status, layout(ctx, "Error", body)),
    }
}

fn layout(ctx: Option<&Ctx<'_>>, title: &str, body: Markup) -> Markup {
    // `?print=1`: a document to print or hand on, without the console's navigation.
    let print = ctx.is_some_and(|c| c.query.get("print") == Some("1"));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // Under the CSP htmx must not inject styles or evaluate strings.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                @if let Some(c) = ctx {
                    // For scripted clients and htmx requests that are not forms.
                    meta name="csrf-token" content=(c.csrf_token());
                }
                title { (title) " · eugate console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/htmx.min.js" defer {}
            }
            body {
                @if !print { header.top {
                    span.brand { "eugate console" }
                    @if let Some(c) = ctx {
                        nav {
                            @for (path, label) in NAV {
                                @if c.path.starts_with(path) {
                                    a.current href=(path) { (label) }
                                } @else {
                                    a href=(path) { (label) }
                                }
                            }
                        }
                        span.who #officer { (c.officer.name) " (" (c.officer.roles_text()) ")" }
                    }
                } }
                main { (body) }
            }
        }
    }
}

fn html_response(status: StatusCode, body: Markup) -> Response<Full<Bytes>> {
    response(
        status,
        "text/html; charset=utf-8",
        body.into_string().into(),
    )
}

pub(super) fn response(
    status: StatusCode,
    content_type: &str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

/// The hidden CSRF field every console form carries.
pub fn csrf_field(ctx: &Ctx<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf_token()); }
}

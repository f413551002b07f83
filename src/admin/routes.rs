//! The admin endpoints: `/livez`, `/readyz`, `/metrics` (GET and HEAD only), and the
//! compliance console under `/console` when it is configured.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

use super::ready::Readiness;
use rustls::pki_types::CertificateDer;

use crate::transfer::Gateway;

/// What the endpoints read.
#[derive(Debug)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub readiness: Arc<Readiness>,
    pub console: Option<Arc<crate::console::Console>>,
}

const TEXT: &str = "text/plain; charset=utf-8";
/// prometheus-client writes OpenMetrics text, which Prometheus also reads as plain text.
const METRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) async fn answer<B>(
    state: &AdminState,
    chain: &[CertificateDer<'static>],
    req: Request<B>,
) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path();
    if path == "/console" || path.starts_with("/console/") {
        return match &state.console {
            Some(console) => console.handle(chain, req).await,
            None => reply(
                StatusCode::NOT_FOUND,
                TEXT,
                "the compliance console is off; add a [console] section to turn it on\n".into(),
            ),
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match req.uri().path() {
        "/livez" => reply(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => {
            let report = state.readiness.report(&state.gateway.health_checks());
            let status = if report.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, TEXT, report.body)
        }
        "/metrics" => reply(StatusCode::OK, METRICS, state.gateway.metrics_text()),
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /livez, /readyz or /metrics\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    // Health answers must be fresh at every poll.
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    resp
}

//! A PROXY header where none may come: a direct (not load-balanced) control connection that
//! opens with one is refused, logged and counted (`frontend::proxy_header`).

use super::*;
use crate::frontend::proxy_header::{self, HeaderError};

impl Session {
    /// Implicit FTPS from a peer that is not a balancer: whether it opened with a PROXY header
    /// (refused, logged and counted) rather than a TLS ClientHello, or sent nothing in time;
    /// `true`: the connection is done.
    pub(super) async fn proxy_header_peeked(&mut self) -> bool {
        let Control::Plain(tcp) = &self.control else {
            return false;
        };
        if !std::mem::take(&mut self.check_opening) {
            return false;
        }
        let mut start = [0u8; 12];
        // The same wait as the TLS handshake's: a silent client is not given it twice.
        let peek = tokio::time::timeout(self.shared.data_timeout, tcp.peek(&mut start));
        match peek.await {
            Err(_) => {
                tracing::info!(peer = %self.peer, implicit = true, "TLS handshake on the control connection timed out");
                true
            }
            // The handshake reports it.
            Ok(Err(_)) => false,
            Ok(Ok(n)) => self.refuse_signature(proxy_header::signature_of(&start[..n])),
        }
    }

    /// Explicit FTPS from a peer that is not a balancer: whether its first line is the start
    /// of a PROXY header (refused, logged and counted). A v2 signature reads as an empty line,
    /// then `\r\n\0\r\nQUIT\n`, which would otherwise quietly end the session.
    pub(super) fn proxy_header_first(&mut self, line: &Line) -> bool {
        if !std::mem::take(&mut self.check_opening) {
            return false;
        }
        let Line::Text(first) = line else {
            return false;
        };
        self.refuse_signature(proxy_header::in_first_line(first, self.lines.pending()))
    }

    fn refuse_signature(&self, version: Option<&'static str>) -> bool {
        let Some(version) = version else {
            return false;
        };
        self.shared
            .proxy
            .refused(self.peer, &HeaderError::NotABalancer(version));
        true
    }
}

//! `USER` on a connection whose TLS handshake verified a client certificate (mutual TLS):
//! a certificate mapped to that user logs in at once with 232 (RFC 4217 section 6: "user
//! logged in, authorized by security data exchange"; curl, lftp and ftplib take any 2xx to
//! USER as logged in and send no PASS); one mapped to another user is refused; one nobody
//! lists leaves the password login.

use super::*;
use crate::transfer::{ClientCertificateAttempt, ClientCertificateRefusal};

impl Session {
    /// `None`: the certificate is mapped to nobody, go on with a password.
    pub(super) async fn certificate_login(
        &mut self,
        user: &str,
        cert: &ClientCertificate,
    ) -> Option<Reply> {
        let gw = self.shared.gateway.clone();
        let result = gw.authenticate_client_certificate(user, cert);
        if result.as_ref().err() == Some(&ClientCertificateRefusal::NotMapped) {
            return None;
        }
        let ip = Some(self.peer.ip());
        let source = self.peer.to_string();
        let attempt = |tenant| ClientCertificateAttempt {
            user,
            tenant,
            source: &source,
            cert,
        };
        let guard = gw.guard();
        match guard.check(ip, user, Method::Key, Instant::now()) {
            Verdict::Allowed => {}
            Verdict::Throttled(d) => tokio::time::sleep(d).await,
            Verdict::Banned | Verdict::Full => {
                gw.audit_auth_client_certificate(&attempt(None), AuthOutcome::Banned, None);
                return Some(r(
                    421,
                    "too many failed logins from your address; try again later",
                ));
            }
        }
        match result {
            Ok(who) => {
                let tenant = who.tenant.clone();
                let record = |outcome| {
                    gw.audit_auth_client_certificate(&attempt(Some(&tenant)), outcome, None)
                };
                if let Err(refused) = self.login(who, record) {
                    return Some(refused);
                }
                tracing::info!(user = %user, peer = %self.peer, certificate = %cert.fingerprint(), "FTPS login by client certificate");
                Some(r(
                    232,
                    format!(
                        "logged in as {user} by client certificate {}",
                        cert.fingerprint()
                    ),
                ))
            }
            Err(e) => {
                let delay = guard.failure(ip, user, Method::Key, Instant::now());
                gw.audit_auth_client_certificate(&attempt(None), AuthOutcome::Rejected, Some(&e));
                tokio::time::sleep(delay).await;
                self.login_failures += 1;
                if self.login_failures >= MAX_LOGIN_FAILURES {
                    return Some(r(421, "too many failed logins; closing"));
                }
                Some(r(
                    530,
                    format!(
                        "your client certificate {} is mapped to another user, not {user}; log in as that user, or connect without a certificate to use a password",
                        cert.fingerprint()
                    ),
                ))
            }
        }
    }
}

//! Authentication results into the audit log, through the per-source throttle: an accepted
//! login is always written (no record, no session); refusals are written up to a rate and
//! counted beyond it, so a flood of attempts costs the log a bounded number of records.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::{AuthOutcome, Gateway};
use crate::audit::{
    AttemptKind, AuditEvent, AuditLog, AuthThrottle, CertificateRecord, ThrottleConfig,
    TlsCertificateRecord,
};
use crate::auth::{
    CertificateInfo, CertificateRefusal, ClientCertificate, ClientCertificateRefusal,
};

/// The method name a certificate login is audited under.
pub const CERTIFICATE_METHOD: &str = "publickey-certificate";

/// Who tried a certificate, from where, and what it said of itself.
pub struct CertificateAttempt<'a> {
    pub user: &'a str,
    /// Set once the login is accepted (or refused only for the session limit).
    pub tenant: Option<&'a str>,
    pub source: &'a str,
    pub info: &'a CertificateInfo,
}
use crate::config::Config;

/// The method name an FTPS client certificate login is audited under.
pub const CLIENT_CERTIFICATE_METHOD: &str = "ftps certificate";

/// Who presented an FTPS client certificate, from where, and the certificate.
pub struct ClientCertificateAttempt<'a> {
    pub user: &'a str,
    pub tenant: Option<&'a str>,
    pub source: &'a str,
    pub cert: &'a ClientCertificate,
}

impl AuthOutcome {
    fn attempt_kind(self) -> AttemptKind {
        match self {
            AuthOutcome::Accepted => AttemptKind::Always,
            AuthOutcome::Rejected | AuthOutcome::SessionLimit => {
                AttemptKind::RateLimited(self.as_str())
            }
            AuthOutcome::Banned => AttemptKind::OncePerUserPerInterval(self.as_str()),
        }
    }
}

/// The throttle for `config`'s `[audit]`, with a task that writes the summaries of sources
/// that went quiet (an attacker that stops must still show up in the log).
pub(super) fn throttle(config: &Config, audit: &Arc<AuditLog>) -> Arc<AuthThrottle> {
    let a = &config.audit;
    let throttle = Arc::new(AuthThrottle::new(ThrottleConfig {
        records_per_sec: a.auth_records_per_sec,
        burst: a.auth_records_burst,
        interval: a.summary_interval,
        max_sources: a.max_tracked_sources,
        field_cap: a.max_field_bytes,
    }));
    let weak = Arc::downgrade(&throttle);
    let audit = audit.clone();
    let period = a.summary_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // The gateway is gone: nothing left to flush.
            let Some(throttle) = weak.upgrade() else {
                return;
            };
            write_summaries(&audit, throttle.due(Instant::now()));
        }
    });
    throttle
}

fn write_summaries(audit: &AuditLog, summaries: Vec<AuditEvent>) {
    for s in summaries {
        if let Err(e) = audit.append(&s) {
            // The counts are lost to the log; the gateway log keeps them.
            if let AuditEvent::AuthSummary {
                source,
                outcome,
                attempts,
                ..
            } = &s
            {
                tracing::error!(error = %e, %source, %outcome, attempts, "a summary of refused logins could not be recorded in the audit log");
            }
        }
    }
}

impl Gateway {
    /// Records an authentication result. `false` means the record could not be written: the
    /// caller refuses the login (no audit record, no session). A refusal beyond the source's
    /// record rate is counted for a summary record instead, and answers `true`.
    pub fn audit_auth(
        &self,
        user: &str,
        tenant: Option<&str>,
        source: &str,
        method: &str,
        outcome: AuthOutcome,
    ) -> bool {
        self.record_auth(user, tenant, source, method, outcome, None, None, None)
    }

    /// [`Gateway::audit_auth`] for a login by OpenSSH user certificate: the record also names
    /// the certificate (key id, serial, CA) and, for a refusal, why.
    pub fn audit_auth_certificate(
        &self,
        attempt: &CertificateAttempt<'_>,
        outcome: AuthOutcome,
        reason: Option<&CertificateRefusal>,
    ) -> bool {
        let info = attempt.info;
        self.record_auth(
            attempt.user,
            attempt.tenant,
            attempt.source,
            CERTIFICATE_METHOD,
            outcome,
            Some(CertificateRecord {
                key_id: info.key_id.clone(),
                serial: info.serial,
                ca: info.ca.clone(),
            }),
            None,
            reason.map(ToString::to_string),
        )
    }

    /// [`Gateway::audit_auth`] for an FTPS login by X.509 client certificate: method
    /// `ftps certificate`, with the certificate's fingerprint and subject.
    pub fn audit_auth_client_certificate(
        &self,
        attempt: &ClientCertificateAttempt<'_>,
        outcome: AuthOutcome,
        reason: Option<&ClientCertificateRefusal>,
    ) -> bool {
        self.record_auth(
            attempt.user,
            attempt.tenant,
            attempt.source,
            CLIENT_CERTIFICATE_METHOD,
            outcome,
            None,
            Some(TlsCertificateRecord {
                sha256: attempt.cert.fingerprint(),
                subject: attempt.cert.subject_text(),
            }),
            reason.map(ToString::to_string),
        )
    }

    #[allow(clippy::too_many_arguments)] // one record's fields, named at the callers above
    fn record_auth(
        &self,
        user: &str,
        tenant: Option<&str>,
        source: &str,
        method: &str,
        outcome: AuthOutcome,
        certificate: Option<CertificateRecord>,
        tls_certificate: Option<TlsCertificateRecord>,
        reason: Option<String>,
    ) -> bool {
        // Every attempt is counted and logged, also those the throttle keeps out of the audit log.
        self.metrics.auth_attempt(method, outcome);
        tracing::info!(
            event = "auth",
            outcome = outcome.as_str(),
            method,
            user,
            tenant = tenant.unwrap_or(""),
            source,
            "authentication attempt"
        );
        let admission = self.auth_throttle.admit(
            source,
            outcome.attempt_kind(),
            user,
            Instant::now(),
            SystemTime::now(),
        );
        write_summaries(&self.audit, admission.summaries);
        if !admission.write {
            return true;
        }
        match self.audit.append(&AuditEvent::Auth {
            user: user.to_string(),
            tenant: tenant.map(str::to_string),
            source: source.to_string(),
            method: method.to_string(),
            outcome: outcome.as_str().to_string(),
            certificate,
            tls_certificate,
            reason,
        }) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "audit log unavailable");
                false
            }
        }
    }

    /// Writes every pending count of refused logins (at shutdown, before the `stop` record).
    pub fn flush_auth_summaries(&self) {
        write_summaries(&self.audit, self.auth_throttle.drain());
    }
}

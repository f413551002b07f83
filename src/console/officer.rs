//! Who is asking: the client certificate, verified against `[console] client_ca` alone (the
//! admin listener may also trust a monitoring CA), then mapped to a configured officer.

use std::collections::BTreeSet;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::auth::ClientCertificate;
use crate::config::{ConsoleConfig, OfficerRole};

/// A logged-in officer, as every page and audit record names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub name: String,
    pub roles: BTreeSet<OfficerRole>,
    /// `sha256:AB:…` of the certificate presented, for the audit record.
    pub fingerprint: String,
}

impl Officer {
    pub fn has(&self, role: OfficerRole) -> bool {
        self.roles.contains(&role)
    }

    /// "editor, approver".
    pub fn roles_text(&self) -> String {
        let words: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        words.join(", ")
    }
}

/// Why a request gets no page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the console needs a client certificate from the officers' CA; import your PKCS#12 file into the browser and reload"
    )]
    NoCertificate,
    #[error("the client certificate was not issued by the officers' CA: {0}")]
    NotFromOfficersCa(String),
    #[error(
        "the client certificate {fingerprint} is not listed for any officer; ask an administrator to add it to [console.officers]"
    )]
    NotAnOfficer {
        fingerprint: String,
        subject: String,
    },
}

pub(super) struct Identify {
    pub verifier: Arc<dyn ClientCertVerifier>,
}

impl Identify {
    /// The officer presenting `chain` (end entity first), or why nobody.
    pub fn officer(
        &self,
        config: &ConsoleConfig,
        chain: &[CertificateDer<'static>],
    ) -> Result<Officer, Refusal> {
        let Some((end, intermediates)) = chain.split_first() else {
            return Err(Refusal::NoCertificate);
        };
        self.verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .map_err(|e| Refusal::NotFromOfficersCa(e.to_string()))?;
        let cert = ClientCertificate::from_der(end);
        config
            .officers
            .iter()
            .find(|(_, o)| o.certificates.accepts(&cert))
            .map(|(name, o)| Officer {
                name: name.clone(),
                roles: o.roles.clone(),
                fingerprint: cert.fingerprint(),
            })
            .ok_or_else(|| Refusal::NotAnOfficer {
                fingerprint: cert.fingerprint(),
                subject: cert.subject_text(),
            })
    }
}

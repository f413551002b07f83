//! Who may log in, and as whom: the users table built from the config, checked by password
//! (argon2id), SSH public key or OpenSSH user certificate. It knows no protocol: every front
//! end reaches it through `transfer::Gateway`, so one user logs in the same way everywhere,
//! and failed logins ([`AuthGuard`]) and open sessions ([`SessionLimits`]) count across
//! protocols.

mod certificate;
mod client_certificate;
pub mod guard;
mod keys;
mod password;
mod sessions;
mod source_address;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use russh::keys::{Certificate, PublicKey};
use zeroize::Zeroizing;

use crate::config::{Config, Permissions};

pub use certificate::{CertificateInfo, CertificateRefusal, TrustedCas};
pub use client_certificate::{
    ClientCertificate, ClientCertificateMap, ClientCertificateRefusal, Subject, parse_fingerprint,
    parse_subject,
};
pub use guard::{ActiveBans, AuthGuard, Method, Verdict};
pub use sessions::{SessionInfo, SessionLimitReached, SessionLimits, SessionSlot};
pub use source_address::{BadRange, Range as AddressRange};

/// A user the credentials proved, with what the config grants them. Only this module makes
/// one, so a front end cannot invent a login.
#[derive(Debug, Clone)]
pub struct Account {
    tenant: String,
    user: String,
    permissions: Permissions,
}

impl Account {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn permissions(&self) -> Permissions {
        self.permissions
    }
}

struct User {
    tenant: String,
    keys: Vec<PublicKey>,
    password_hash: Option<String>,
    permissions: Permissions,
    client_certificates: ClientCertificateMap,
}

/// The users of every tenant, by name (names are unique across tenants), and the CAs trusted
/// to certify them.
pub struct Users {
    users: HashMap<String, User>,
    cas: TrustedCas,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("users", &self.users.len())
            .field("user_cas", &!self.cas.is_empty())
            .finish()
    }
}

impl Users {
    pub fn from_config(config: &Config) -> Users {
        let mut users = HashMap::new();
        for (tname, t) in &config.tenants {
            for (uname, u) in &t.users {
                users.insert(
                    uname.clone(),
                    User {
                        tenant: tname.clone(),
                        keys: u.authorized_keys.clone(),
                        password_hash: u.password_hash.clone(),
                        permissions: u.permissions,
                        client_certificates: u.ftps_client_certificates.clone(),
                    },
                );
            }
        }
        Users {
            users,
            cas: TrustedCas::new(&config.auth.user_ca_keys),
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn account(&self, name: &str, u: &User) -> Account {
        Account {
            tenant: u.tenant.clone(),
            user: name.to_string(),
            permissions: u.permissions,
        }
    }

    /// Whether `user` exists and may log in with this public key.
    pub fn by_key(&self, user: &str, key: &PublicKey) -> Option<Account> {
        let u = self.users.get(user)?;
        keys::authorized(&u.keys, key).then(|| self.account(user, u))
    }

    /// Whether `user` has a password set (so that a client is offered the method).
    pub fn has_password(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.password_hash.is_some())
    }

    /// Verifies a password; unknown users cost the same work as known ones.
    pub async fn by_password(&self, user: &str, password: Zeroizing<String>) -> Option<Account> {
        let u = self.users.get(user);
        let ok = password::verify(u.and_then(|u| u.password_hash.clone()), password).await;
        match u {
            Some(u) if ok => Some(self.account(user, u)),
            _ => None,
        }
    }

    /// Whether any CA is trusted to certify users (else certificates are not looked at).
    pub fn trusts_certificates(&self) -> bool {
        !self.cas.is_empty()
    }

    /// Checks an OpenSSH user certificate whose key the client has proved it holds.
    pub fn by_certificate(
        &self,
        user: &str,
        cert: &Certificate,
        client: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<Account, CertificateRefusal> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.cas.check(cert, user, client, now)?;
        let u = self
            .users
            .get(user)
            .ok_or(CertificateRefusal::UnknownUser)?;
        Ok(self.account(user, u))
    }

    /// Maps an FTPS client certificate (already verified against `[ftps] client_ca` by TLS)
    /// to `user`. A certificate another user lists is refused outright; one nobody lists is
    /// [`ClientCertificateRefusal::NotMapped`], and the login falls back to a password.
    pub fn by_client_certificate(
        &self,
        user: &str,
        cert: &ClientCertificate,
    ) -> Result<Account, ClientCertificateRefusal> {
        if let Some(u) = self.users.get(user)
            && u.client_certificates.accepts(cert)
        {
            return Ok(self.account(user, u));
        }
        if self
            .users
            .values()
            .any(|u| u.client_certificates.accepts(cert))
        {
            return Err(ClientCertificateRefusal::OtherUser);
        }
        Err(ClientCertificateRefusal::NotMapped)
    }
}

#[cfg(test)]
mod tests;

//! `[tenants.*.users.*]`: who may log in, how (keys, argon2id hash) and what they may do.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use russh::keys::PublicKey;

use super::raw::RawUser;
use super::tenants::TenantConfig;
use super::{Collector, valid_name};
use crate::auth::{ClientCertificateMap, parse_fingerprint, parse_subject};

#[derive(Clone)]
pub struct UserConfig {
    pub name: String,
    pub tenant: String,
    pub authorized_keys: Vec<PublicKey>,
    /// argon2id PHC string (never a plaintext password).
    pub password_hash: Option<String>,
    pub permissions: Permissions,
    /// FTPS client certificates that log this user in (`ftps_client_certificates`,
    /// `ftps_client_subjects`); they count only when `[ftps] client_ca` is set.
    pub ftps_client_certificates: ClientCertificateMap,
}

impl fmt::Debug for UserConfig {
    // The hash is not a secret in the strict sense, but it has no business in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password", &self.password_hash.is_some())
            .field("permissions", &self.permissions)
            .field("ftps_client_certificates", &self.ftps_client_certificates)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    pub read: bool,
    pub write: bool,
    pub delete: bool,
}

/// SSH user names are unique across tenants: which tenant each name was first seen in.
pub(super) type UserOwners = BTreeMap<String, String>;

/// Validates one user `uname` of tenant `tenant`; `key` is the tenant's dotted key.
pub(super) fn user(
    key: &str,
    tenant: &str,
    uname: String,
    u: RawUser,
    owners: &mut UserOwners,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> UserConfig {
    let ukey = format!("{key}.users.{uname}");
    if !valid_name(&uname) {
        c.push(
            &ukey,
            "user names use letters, digits, `-`, `_`, `.` (at most 64)",
        );
    }
    if let Some(other) = owners.insert(uname.clone(), tenant.to_string()) {
        c.push(
            &ukey,
            format!(
                "user `{uname}` also exists in tenant `{other}`; SSH user names must be unique across tenants"
            ),
        );
    }
    let password_hash = password_hash(&ukey, &u, c);
    let authorized_keys = authorized_keys(&ukey, &u, resolve, c);
    let permissions = permissions(&ukey, u.permissions.as_deref(), c);
    let ftps_client_certificates = client_certificates(&ukey, &u, c);
    UserConfig {
        name: uname,
        tenant: tenant.to_string(),
        authorized_keys,
        password_hash,
        permissions,
        ftps_client_certificates,
    }
}

/// `ftps_client_certificates` (fingerprints) and `ftps_client_subjects`.
fn client_certificates(ukey: &str, u: &RawUser, c: &mut Collector) -> ClientCertificateMap {
    let mut map = ClientCertificateMap::default();
    for (i, f) in u.ftps_client_certificates.iter().enumerate() {
        match parse_fingerprint(f) {
            Ok(d) => map.fingerprints.push(d),
            Err(e) => c.push(format!("{ukey}.ftps_client_certificates[{i}]"), e),
        }
    }
    for (i, s) in u.ftps_client_subjects.iter().enumerate() {
        match parse_subject(s) {
            Ok(s) => map.subjects.push(s),
            Err(e) => c.push(format!("{ukey}.ftps_client_subjects[{i}]"), e),
        }
    }
    map
}

/// The argon2id hash, if any; a plaintext `password` is refused without being echoed.
fn password_hash(ukey: &str, u: &RawUser, c: &mut Collector) -> Option<String> {
    if u.password.is_some() {
        c.push(
            format!("{ukey}.password"),
            "plaintext passwords are refused; run `eugate passwd` and put its output in password_hash",
        );
    }
    if let Some(h) = &u.password_hash
        && let Err(e) = check_password_hash(h)
    {
        c.push(format!("{ukey}.password_hash"), e);
    }
    u.password_hash.clone()
}

/// Keys from `authorized_keys` and then from `authorized_keys_file`.
fn authorized_keys(
    ukey: &str,
    u: &RawUser,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> Vec<PublicKey> {
    let mut keys = Vec::new();
    for (i, line) in u.authorized_keys.iter().enumerate() {
        match parse_authorized_key(line) {
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(e) => c.push(format!("{ukey}.authorized_keys[{i}]"), e),
        }
    }
    let Some(f) = &u.authorized_keys_file else {
        return keys;
    };
    let path = resolve(f);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            for (n, line) in text.lines().enumerate() {
                match parse_authorized_key(line) {
                    Ok(Some(k)) => keys.push(k),
                    Ok(None) => {}
                    Err(e) => c.push(
                        format!("{ukey}.authorized_keys_file"),
                        format!("{} line {}: {e}", path.display(), n + 1),
                    ),
                }
            }
        }
        Err(e) => c.push(
            format!("{ukey}.authorized_keys_file"),
            format!("cannot read {}: {e}; fix the path", path.display()),
        ),
    }
    keys
}

/// `permissions = [...]`; absent means read and write, not delete.
fn permissions(ukey: &str, raw: Option<&[String]>, c: &mut Collector) -> Permissions {
    let Some(list) = raw else {
        return Permissions {
            read: true,
            write: true,
            delete: false,
        };
    };
    let mut p = Permissions::default();
    for perm in list {
        match perm.as_str() {
            "read" => p.read = true,
            "write" => p.write = true,
            "delete" => p.delete = true,
            other => c.push(
                format!("{ukey}.permissions"),
                format!("unknown permission `{other}`; use \"read\", \"write\", \"delete\""),
            ),
        }
    }
    p
}

/// Accepts only argon2id PHC strings.
fn check_password_hash(h: &str) -> Result<(), String> {
    match argon2::PasswordHash::new(h) {
        Ok(p) if p.algorithm.as_str() == "argon2id" => Ok(()),
        Ok(p) => Err(format!(
            "uses `{}`; only argon2id hashes are accepted; create one with `eugate passwd`",
            p.algorithm
        )),
        Err(_) => Err(
            "is not an argon2id PHC string ($argon2id$v=19$...); create one with `eugate passwd`"
                .to_string(),
        ),
    }
}

/// One authorized_keys line: `ALGO BASE64 [comment]`. Blank lines and `#` comments give `None`.
/// Options (`from=`, `command=`...) are refused: the gateway would not honour them.
pub fn parse_authorized_key(line: &str) -> Result<Option<PublicKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    let known = first.starts_with("ssh-")
        || first.starts_with("ecdsa-sha2-")
        || first.starts_with("sk-")
        || first.starts_with("rsa-");
    if !known {
        return Err(format!(
            "starts with `{}`: authorized_keys options are not supported; keep only `ALGORITHM BASE64 [comment]`",
            first.chars().take(40).collect::<String>()
        ));
    }
    if first.ends_with("-cert-v01@openssh.com") {
        return Err(format!(
            "`{}` is a certificate, not a public key; paste the line of the .pub file (a CA's own key for [auth] user_ca_keys: certificates do not chain)",
            first.chars().take(60).collect::<String>()
        ));
    }
    PublicKey::from_openssh(line).map(Some).map_err(|e| {
        format!("not a valid OpenSSH public key ({e}); paste the line of the .pub file")
    })
}

/// Every user needs a way to log in: a key, a password hash, a mapped FTPS client certificate
/// or, when `[auth] user_ca_keys` trusts a CA, an SSH certificate (checked here, after `[auth]`,
/// `[ftps]` and the tenants are all read). Client certificate mappings need `[ftps] client_ca`.
pub(super) fn check_login_methods(
    tenants: &BTreeMap<String, TenantConfig>,
    certificates: bool,
    client_ca: bool,
    c: &mut Collector,
) {
    for (tname, t) in tenants {
        for (uname, u) in &t.users {
            let mapped = !u.ftps_client_certificates.is_empty();
            if mapped && !client_ca {
                c.push(
                    format!("tenants.{tname}.users.{uname}"),
                    "ftps_client_certificates/ftps_client_subjects need [ftps] client_ca, the CA \
                     that issues those certificates",
                );
            }
            if certificates || (mapped && client_ca) {
                continue;
            }
            if u.authorized_keys.is_empty() && u.password_hash.is_none() {
                c.push(
                    format!("tenants.{tname}.users.{uname}"),
                    "no way to log in; add authorized_keys, authorized_keys_file or password_hash \
                     (or trust a CA in [auth] user_ca_keys for certificate logins, or map FTPS \
                     client certificates with [ftps] client_ca set)",
                );
            }
        }
    }
}

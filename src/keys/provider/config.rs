//! Provider settings as `config` validated them (`[key_providers.NAME]`); no I/O here.

use std::path::PathBuf;
use std::time::Duration;

use super::ProviderError;

/// Which kind of provider; the byte is stored in keyring files and object headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// The master key is a file beside the keyring (`master_key_file`).
    File,
    /// A PKCS#11 token (an HSM; SoftHSM in tests): AES-GCM with a non-extractable key.
    Pkcs11,
    /// OpenBao / HashiCorp Vault Transit: encrypt/decrypt over HTTPS.
    Transit,
    /// AWS KMS Encrypt/Decrypt.
    AwsKms,
}

impl ProviderKind {
    pub fn id(self) -> u8 {
        match self {
            ProviderKind::File => 0x00,
            ProviderKind::Pkcs11 => 0x01,
            ProviderKind::Transit => 0x02,
            ProviderKind::AwsKms => 0x03,
        }
    }

    pub fn from_id(id: u8) -> Option<ProviderKind> {
        match id {
            0x00 => Some(ProviderKind::File),
            0x01 => Some(ProviderKind::Pkcs11),
            0x02 => Some(ProviderKind::Transit),
            0x03 => Some(ProviderKind::AwsKms),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::File => "file",
            ProviderKind::Pkcs11 => "pkcs11",
            ProviderKind::Transit => "transit",
            ProviderKind::AwsKms => "aws-kms",
        }
    }
}

/// One `[key_providers.NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub name: String,
    /// Every call is abandoned after this long (`timeout_secs`, default 5).
    pub timeout: Duration,
    pub settings: ProviderSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    Pkcs11(Pkcs11Config),
    Transit(TransitConfig),
    AwsKms(AwsKmsConfig),
}

impl ProviderConfig {
    pub fn kind(&self) -> ProviderKind {
        match &self.settings {
            ProviderSettings::Pkcs11(_) => ProviderKind::Pkcs11,
            ProviderSettings::Transit(_) => ProviderKind::Transit,
            ProviderSettings::AwsKms(_) => ProviderKind::AwsKms,
        }
    }

    /// The error of a provider built from a configuration of another kind.
    pub(crate) fn wrong_kind(&self, expected: ProviderKind) -> ProviderError {
        ProviderError::Config {
            key_ref: format!("{}:{}", self.kind().as_str(), self.name),
            reason: format!(
                "key provider `{}` is of kind {}, not {}",
                self.name,
                self.kind().as_str(),
                expected.as_str()
            ),
        }
    }
}

/// `kind = "pkcs11"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label (CKA_LABEL of the token, as `softhsm2-util --show-slots` prints).
    pub token_label: String,
    /// A private file (0600) holding the user PIN; the PIN is never in the config itself.
    pub pin_file: PathBuf,
    /// CKA_LABEL of the AES-256 secret key object (CKA_ENCRYPT/CKA_DECRYPT, non-extractable).
    pub key_label: String,
}

/// `kind = "transit"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitConfig {
    /// `https://bao.example:8200` (`http://` only for loopback addresses).
    pub address: String,
    /// The secrets engine's mount path (default `transit`).
    pub mount: String,
    /// The Transit key's name.
    pub key: String,
    /// A private file (0600) holding the token.
    pub token_file: PathBuf,
    /// PEM CA certificates to trust for `https://` (default: the system's roots are NOT used;
    /// without it only a loopback `http://` address is accepted).
    pub ca_bundle: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace header, if any.
    pub namespace: Option<String>,
}

/// `kind = "aws-kms"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKmsConfig {
    /// Must be an EU region (checked by `config`).
    pub region: String,
    /// Key id, ARN or alias (`alias/eugate-master`).
    pub key_id: String,
    /// Another endpoint (a local KMS-compatible server in tests).
    pub endpoint: Option<String>,
    /// As for S3 destinations: `{ env = "PREFIX" }`, `{ file = "kms.toml" }` or `"aws-chain"`.
    pub credentials: crate::config::S3Credentials,
}

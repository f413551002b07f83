//! `kind = "pkcs11"`: a non-extractable AES-256 key on a PKCS#11 token (an HSM; SoftHSM in tests).
//!
//! wrap = C_Encrypt with CKM_AES_GCM (fresh random 12-byte IV, AAD = context, 128-bit tag);
//! blob = [`BLOB_FORMAT`] ‖ IV ‖ ciphertext ‖ tag. The key is looked up by its label on every
//! call, so a key deleted on the token (how a tenant revokes it) is noticed at the next call, and
//! a key whose CKA_ENCRYPT / CKA_DECRYPT was set false reports [`ProviderError::Revoked`].
//!
//! PKCS#11 calls block: each runs in `spawn_blocking` under the provider's timeout. A module is
//! loaded and initialised once per process and never finalised, so several providers (a master
//! key and tenants' keys) can share it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::{
    KeyProvider, ProviderConfig, ProviderError, ProviderKind, ProviderSettings, WRAPPED_KEY_LEN,
    Wrapped,
};

/// First byte of every blob this provider writes (AES-GCM on the token, layout above).
pub const BLOB_FORMAT: u8 = 0x01;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// 1 + 12 + 32 + 16 = 61 bytes.
pub const BLOB_LEN: usize = 1 + IV_LEN + WRAPPED_KEY_LEN + TAG_LEN;
/// Idle sessions kept for reuse; more concurrent calls open (and then close) extra sessions.
const MAX_IDLE_SESSIONS: usize = 4;

/// One key on one token. `Debug` shows the key reference only.
pub struct Pkcs11Provider {
    inner: Arc<Inner>,
    timeout: Duration,
}

struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    key_label: String,
    key_ref: String,
    /// Holds the user login: PKCS#11 logs an application out when its last session on a token
    /// closes, so this one stays open for the provider's lifetime.
    _login: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("key_ref", &self.inner.key_ref)
            .finish_non_exhaustive()
    }
}

fn key_ref_of(token_label: &str, key_label: &str) -> String {
    format!("pkcs11:token={token_label};object={key_label}")
}

/// Modules loaded by this process, by path: loaded and `C_Initialize`d once, never finalised.
fn load_module(path: &Path) -> Result<Pkcs11, String> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    if !path.is_file() {
        return Err(format!(
            "PKCS#11 module {} does not exist or is not a file; set `module` to the token's \
             library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)",
            path.display()
        ));
    }
    let ctx = Pkcs11::new(path)
        .map_err(|e| format!("PKCS#11 module {}: cannot load it ({e})", path.display()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another copy (e.g. a library in this process) initialised it already: fine.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(format!(
                "PKCS#11 module {}: C_Initialize failed ({e})",
                path.display()
            ));
        }
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The PIN file's contents without a trailing newline.
fn read_pin(path: &Path, key_ref: &str) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let raw = crate::keys::private_file::read(path).map_err(|e| ProviderError::Config {
        key_ref: key_ref.to_string(),
        reason: format!("PIN file: {e}"),
    })?;
    let mut end = raw.len();
    while end > 0 && matches!(raw[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    if end == 0 {
        return Err(ProviderError::Config {
            key_ref: key_ref.to_string(),
            reason: format!("PIN file {} is empty", path.display()),
        });
    }
    Ok(Zeroizing::new(raw[..end].to_vec()))
}

/// Maps a PKCS#11 failure of `what` to the provider's error kinds.
fn map_ck(key_ref: &str, what: &str, e: CkError) -> ProviderError {
    let key_ref = key_ref.to_string();
    let reason = format!("{what}: {e}");
    let CkError::Pkcs11(rv, _) = e else {
        return ProviderError::Protocol { key_ref, reason };
    };
    use RvError as R;
    match rv {
        R::PinIncorrect | R::PinInvalid | R::PinLenRange | R::PinExpired | R::PinLocked => {
            ProviderError::Denied { key_ref, reason }
        }
        R::UserNotLoggedIn | R::UserPinNotInitialized => ProviderError::Denied { key_ref, reason },
        R::KeyFunctionNotPermitted => ProviderError::Revoked {
            key_ref,
            reason: format!(
                "{reason} (the key's CKA_ENCRYPT or CKA_DECRYPT attribute is false on the token)"
            ),
        },
        R::ObjectHandleInvalid | R::KeyHandleInvalid => ProviderError::KeyNotFound {
            key_ref,
            reason: format!("{reason} (deleted on the token)"),
        },
        R::EncryptedDataInvalid | R::EncryptedDataLenRange => {
            ProviderError::WrongKey { key_ref, reason }
        }
        R::DeviceRemoved
        | R::DeviceError
        | R::DeviceMemory
        | R::TokenNotPresent
        | R::TokenNotRecognized
        | R::SessionClosed
        | R::SessionHandleInvalid
        | R::SessionCount
        | R::CryptokiNotInitialized => ProviderError::Unreachable { key_ref, reason },
        R::KeyTypeInconsistent | R::KeySizeRange | R::MechanismInvalid => ProviderError::Config {
            key_ref,
            reason: format!(
                "{reason}; the key must be an AES-256 secret key that supports CKM_AES_GCM"
            ),
        },
        _ => ProviderError::Protocol { key_ref, reason },
    }
}

impl Pkcs11Provider {
    /// Loads the module, finds the token by label, logs in with the PIN from `pin_file` and
    /// checks that exactly one secret key has `key_label`.
    pub async fn connect(cfg: &ProviderConfig) -> Result<Pkcs11Provider, ProviderError> {
        let ProviderSettings::Pkcs11(p) = &cfg.settings else {
            return Err(cfg.wrong_kind(ProviderKind::Pkcs11));
        };
        let key_ref = key_ref_of(&p.token_label, &p.key_label);
        let pin = read_pin(&p.pin_file, &key_ref)?;
        let p = p.clone();
        let kr = key_ref.clone();
        let inner = run_blocking(&key_ref, cfg.timeout, move || {
            let ctx = load_module(&p.module).map_err(|reason| ProviderError::Config {
                key_ref: kr.clone(),
                reason,
            })?;
            let slot = find_slot(&ctx, &p.token_label, &p.module, &kr)?;
            let session = ctx
                .open_ro_session(slot)
                .map_err(|e| map_ck(&kr, "opening a session", e))?;
            let raw = RawAuthPin::new(Box::new(pin.to_vec()));
            match session.login_with_raw(UserType::User, &raw) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(map_ck(&kr, "logging in with the PIN file's PIN", e)),
            }
            drop(raw);
            let inner = Inner {
                ctx,
                slot,
                key_label: p.key_label.clone(),
                key_ref: kr,
                _login: Mutex::new(session),
                idle: Mutex::default(),
            };
            inner.with_session(|s| inner.find_key(s).map(|_| ()))?;
            Ok(inner)
        })
        .await?;
        Ok(Pkcs11Provider {
            inner: Arc::new(inner),
            timeout: cfg.timeout,
        })
    }
}

fn find_slot(
    ctx: &Pkcs11,
    token_label: &str,
    module: &Path,
    key_ref: &str,
) -> Result<Slot, ProviderError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| map_ck(key_ref, "listing slots", e))?;
    let mut found = Vec::new();
    let mut labels = Vec::new();
    for slot in slots {
        // A token removed since the module was initialised (SoftHSM: its directory deleted by
        // another process) still has a slot whose info fails: skip it, it is not ours.
        let info = match ctx.get_token_info(slot) {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(slot = slot.id(), error = %e, "PKCS#11 slot skipped");
                continue;
            }
        };
        if !info.token_initialized() {
            continue;
        }
        if info.label() == token_label {
            found.push(slot);
        }
        labels.push(format!("{:?}", info.label()));
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(ProviderError::Config {
            key_ref: key_ref.to_string(),
            reason: format!(
                "module {} has no token labelled {token_label:?} (tokens: {}); check `token_label` \
                 against `softhsm2-util --show-slots` or `pkcs11-tool -L`",
                module.display(),
                if labels.is_empty() {
                    "none".to_string()
                } else {
                    labels.join(", ")
                }
            ),
        }),
        _ => Err(ProviderError::Config {
            key_ref: key_ref.to_string(),
            reason: format!(
                "module {} has {} tokens labelled {token_label:?}; token labels must be unique",
                module.display(),
                found.len()
            ),
        }),
    }
}

impl Inner {
    /// Runs `f` on an idle session (or a new one); the session goes back to the pool unless the
    /// call failed in a way that may have broken it.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let session = match pooled {
            Some(s) => s,
            None => self
                .ctx
                .open_ro_session(self.slot)
                .map_err(|e| map_ck(&self.key_ref, "opening a session", e))?,
        };
        let out = f(&session);
        let keep = match &out {
            Ok(_) => true,
            Err(e) => !e.is_unavailable(),
        };
        if keep {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(session);
            }
        }
        out
    }

    /// The one secret key labelled `key_label`, looked up now.
    fn find_key(&self, s: &Session) -> Result<ObjectHandle, ProviderError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
        ];
        let found = s
            .find_objects(&template)
            .map_err(|e| map_ck(&self.key_ref, "looking up the key", e))?;
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(ProviderError::KeyNotFound {
                key_ref: self.key_ref.clone(),
                reason: format!(
                    "no secret key labelled {:?} on the token (deleted, or `key_label` is wrong)",
                    self.key_label
                ),
            }),
            many => Err(ProviderError::Config {
                key_ref: self.key_ref.clone(),
                reason: format!(
                    "{} secret keys are labelled {:?} on the token; the label must name exactly one",
                    many.len(),
                    self.key_label
                ),
            }),
        }
    }

    fn wrap(
        &self,
        key: &[u8; WRAPPED_KEY_LEN],
        iv: [u8; IV_LEN],
        context: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        self.with_session(|s| {
            let handle = self.find_key(s)?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, context, ((TAG_LEN * 8) as u64).into())
                .map_err(|e| map_ck(&self.key_ref, "AES-GCM parameters", e))?;
            let sealed = s
                .encrypt(&Mechanism::AesGcm(params), handle, &key[..])
                .map_err(|e| map_ck(&self.key_ref, "C_Encrypt (AES-GCM)", e))?;
            if sealed.len() != WRAPPED_KEY_LEN + TAG_LEN {
                return Err(ProviderError::Protocol {
                    key_ref: self.key_ref.clone(),
                    reason: format!(
                        "C_Encrypt returned {} bytes for a 32-byte key, expected {}",
                        sealed.len(),
                        WRAPPED_KEY_LEN + TAG_LEN
                    ),
                });
            }
            let mut blob = Vec::with_capacity(BLOB_LEN);
            blob.push(BLOB_FORMAT);
            blob.extend_from_slice(&iv);
            blob.extend_from_slice(&sealed);
            Ok(blob)
        })
    }

    fn unwrap(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError> {
        let (mut iv, sealed) = parse_blob(blob).map_err(|reason| ProviderError::WrongKey {
            key_ref: self.key_ref.clone(),
            reason,
        })?;
        self.with_session(|s| {
            let handle = self.find_key(s)?;
            let params = GcmParams::new(&mut iv, context, ((TAG_LEN * 8) as u64).into())
                .map_err(|e| map_ck(&self.key_ref, "AES-GCM parameters", e))?;
            let plain = Zeroizing::new(
                s.decrypt(&Mechanism::AesGcm(params), handle, sealed)
                    .map_err(|e| match e {
                        // SoftHSM (2.6) answers a failed GCM tag check with CKR_GENERAL_ERROR.
                        CkError::Pkcs11(RvError::GeneralError, _) => ProviderError::WrongKey {
                            key_ref: self.key_ref.clone(),
                            reason: format!(
                                "C_Decrypt (AES-GCM) failed ({e}): the authentication tag does not match"
                            ),
                        },
                        e => map_ck(&self.key_ref, "C_Decrypt (AES-GCM)", e),
                    })?,
            );
            let mut out = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
            if plain.len() != WRAPPED_KEY_LEN {
                return Err(ProviderError::Protocol {
                    key_ref: self.key_ref.clone(),
                    reason: format!(
                        "C_Decrypt returned {} bytes, expected {WRAPPED_KEY_LEN}",
                        plain.len()
                    ),
                });
            }
            out.copy_from_slice(&plain);
            Ok(out)
        })
    }
}

/// Splits a blob into IV and ciphertext‖tag, or says exactly what is wrong with it.
fn parse_blob(blob: &[u8]) -> Result<([u8; IV_LEN], &[u8]), String> {
    let Some((&format, rest)) = blob.split_first() else {
        return Err("the wrapped key is empty".into());
    };
    if format != BLOB_FORMAT {
        return Err(format!(
            "blob format byte 0x{format:02x}, expected 0x{BLOB_FORMAT:02x} (PKCS#11 AES-GCM)"
        ));
    }
    if blob.len() != BLOB_LEN {
        return Err(format!(
            "the wrapped key is {} bytes, a PKCS#11 AES-GCM blob is {BLOB_LEN}",
            blob.len()
        ));
    }
    let (iv, sealed) = rest.split_at(IV_LEN);
    let mut iv_arr = [0u8; IV_LEN];
    iv_arr.copy_from_slice(iv);
    Ok((iv_arr, sealed))
}

/// Runs a blocking PKCS#11 call off the runtime, abandoned after `timeout`.
async fn run_blocking<T: Send + 'static>(
    key_ref: &str,
    timeout: Duration,
    f: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(out)) => out,
        Ok(Err(join)) => Err(ProviderError::Protocol {
            key_ref: key_ref.to_string(),
            reason: format!("the PKCS#11 call failed inside the module ({join})"),
        }),
        Err(_) => Err(ProviderError::Timeout {
            key_ref: key_ref.to_string(),
            after: timeout,
        }),
    }
}

#[async_trait::async_trait]
impl KeyProvider for Pkcs11Provider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Pkcs11
    }

    fn key_ref(&self) -> String {
        self.inner.key_ref.clone()
    }

    async fn wrap(
        &self,
        key: &Zeroizing<[u8; WRAPPED_KEY_LEN]>,
        context: &[u8],
    ) -> Result<Wrapped, ProviderError> {
        let mut iv = [0u8; IV_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| ProviderError::Random)?;
        let inner = self.inner.clone();
        let key = key.clone();
        let context = context.to_vec();
        let blob = run_blocking(&self.inner.key_ref, self.timeout, move || {
            inner.wrap(&key, iv, &context)
        })
        .await?;
        Ok(Wrapped {
            key_version: 1,
            blob,
        })
    }

    async fn unwrap(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError> {
        let inner = self.inner.clone();
        let blob = blob.to_vec();
        let context = context.to_vec();
        run_blocking(&self.inner.key_ref, self.timeout, move || {
            inner.unwrap(&blob, &context)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_parsed_strictly() {
        let mut blob = vec![BLOB_FORMAT];
        blob.extend_from_slice(&[7u8; IV_LEN]);
        blob.extend_from_slice(&[9u8; WRAPPED_KEY_LEN + TAG_LEN]);
        let (iv, sealed) = parse_blob(&blob).unwrap();
        assert_eq!(iv, [7u8; IV_LEN]);
        assert_eq!(sealed.len(), WRAPPED_KEY_LEN + TAG_LEN);

        assert!(parse_blob(&[]).unwrap_err().contains("empty"));
        let mut other = blob.clone();
        other[0] = 0x02;
        assert!(parse_blob(&other).unwrap_err().contains("format byte 0x02"));
        assert!(
            parse_blob(&blob[..BLOB_LEN - 1])
                .unwrap_err()
                .contains("60 bytes")
        );
        let mut long = blob.clone();
        long.push(0);
        assert!(parse_blob(&long).unwrap_err().contains("62 bytes"));
    }

    #[test]
    fn pin_and_handle_errors_map_to_their_kinds() {
        use cryptoki::context::Function;
        let e = |rv| {
            map_ck(
                "pkcs11:token=t;object=k",
                "x",
                CkError::Pkcs11(rv, Function::Login),
            )
        };
        assert!(matches!(
            e(RvError::PinIncorrect),
            ProviderError::Denied { .. }
        ));
        assert!(matches!(
            e(RvError::PinLocked),
            ProviderError::Denied { .. }
        ));
        assert!(matches!(
            e(RvError::KeyFunctionNotPermitted),
            ProviderError::Revoked { .. }
        ));
        assert!(matches!(
            e(RvError::ObjectHandleInvalid),
            ProviderError::KeyNotFound { .. }
        ));
        assert!(matches!(
            e(RvError::KeyHandleInvalid),
            ProviderError::KeyNotFound { .. }
        ));
        assert!(matches!(
            e(RvError::EncryptedDataInvalid),
            ProviderError::WrongKey { .. }
        ));
        assert!(e(RvError::DeviceRemoved).is_unavailable());
    }
}

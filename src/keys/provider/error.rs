use std::time::Duration;

/// What a provider call can fail with; every message names the key and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "key provider {key_ref}: cannot reach it ({reason}); check that it runs and the address"
    )]
    Unreachable { key_ref: String, reason: String },
    #[error(
        "key provider {key_ref}: no answer within {after:?}; the provider is slow or unreachable"
    )]
    Timeout { key_ref: String, after: Duration },
    #[error("key provider {key_ref}: the key does not exist or was deleted ({reason})")]
    KeyNotFound { key_ref: String, reason: String },
    #[error(
        "key provider {key_ref}: the key is disabled or revoked ({reason}); objects wrapped by it cannot be opened until its owner restores it"
    )]
    Revoked { key_ref: String, reason: String },
    #[error(
        "key provider {key_ref}: access denied ({reason}); check the token, PIN or credentials"
    )]
    Denied { key_ref: String, reason: String },
    #[error(
        "key provider {key_ref}: the wrapped key does not open with this key ({reason}); it was wrapped by another key, for another object, or altered"
    )]
    WrongKey { key_ref: String, reason: String },
    #[error("key provider {key_ref}: unexpected answer: {reason}")]
    Protocol { key_ref: String, reason: String },
    #[error("key provider {key_ref}: {reason}")]
    Config { key_ref: String, reason: String },
    #[error("the system random number generator failed")]
    Random,
}

impl ProviderError {
    /// The provider was not there (unreachable or slow), as opposed to refusing: callers may
    /// report it as temporary.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable { .. } | ProviderError::Timeout { .. }
        )
    }
}

//! The PKCS#11 key provider against a real SoftHSM token (Debian's softhsm2; keys made and
//! deleted with OpenSC's pkcs11-tool): round trip, context binding, tampering, another key,
//! a key deleted or disabled on the token, a wrong PIN, an open PIN file, a missing token and
//! a missing module.

mod common;

use common::softhsm::{MODULE, Token, config_with, in_own_process};
use eugate::keys::provider::{
    KeyProvider, Pkcs11Provider, ProviderError, ProviderKind, WRAPPED_KEY_LEN,
};
use zeroize::Zeroizing;

fn key(byte: u8) -> Zeroizing<[u8; WRAPPED_KEY_LEN]> {
    let mut k = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
    for (i, b) in k.iter_mut().enumerate() {
        *b = byte ^ (i as u8);
    }
    k
}

async fn connect(token: &Token, key_label: &str) -> Pkcs11Provider {
    Pkcs11Provider::connect(&token.config(key_label))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

#[tokio::test]
async fn wrap_unwrap_round_trip_bound_to_context() {
    if !in_own_process("wrap_unwrap_round_trip_bound_to_context") {
        return;
    }
    let token = Token::new("rt");
    token.keygen("master");
    let p = connect(&token, "master").await;
    assert_eq!(p.kind(), ProviderKind::Pkcs11);
    assert_eq!(
        p.key_ref(),
        format!("pkcs11:token={};object=master", token.label)
    );
    let dbg = format!("{p:?}");
    assert!(!dbg.contains(&token.pin), "Debug shows the PIN: {dbg}");

    let k = key(0x5a);
    let w = p.wrap(&k, b"object 1").await.unwrap();
    assert_eq!(w.key_version, 1);
    assert_eq!(w.blob.len(), 61);
    assert_eq!(w.blob[0], 0x01);
    assert!(
        !w.blob.windows(8).any(|win| win == &k[..8]),
        "the key appears in the blob"
    );
    let back = p.unwrap(&w.blob, b"object 1").await.unwrap();
    assert_eq!(&back[..], &k[..]);

    // A fresh IV per wrap.
    let w2 = p.wrap(&k, b"object 1").await.unwrap();
    assert_ne!(w.blob, w2.blob);
    assert_eq!(&p.unwrap(&w2.blob, b"object 1").await.unwrap()[..], &k[..]);

    // Another context does not open it.
    match p.unwrap(&w.blob, b"object 2").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("other context: expected WrongKey, got {other:?}"),
    }
    p.probe().await.unwrap();
}

#[tokio::test]
async fn altered_blobs_are_wrong_keys() {
    if !in_own_process("altered_blobs_are_wrong_keys") {
        return;
    }
    let token = Token::new("tamper");
    token.keygen("master");
    let p = connect(&token, "master").await;
    let w = p.wrap(&key(1), b"ctx").await.unwrap();
    for i in [1, 12, 13, 40, 60] {
        let mut bad = w.blob.clone();
        bad[i] ^= 0x01;
        match p.unwrap(&bad, b"ctx").await {
            Err(ProviderError::WrongKey { .. }) => {}
            other => panic!("byte {i} flipped: expected WrongKey, got {other:?}"),
        }
    }
    let mut bad = w.blob.clone();
    bad[0] = 0x02;
    match p.unwrap(&bad, b"ctx").await {
        Err(ProviderError::WrongKey { reason, .. }) => {
            assert!(reason.contains("format byte 0x02"), "{reason}")
        }
        other => panic!("format byte: expected WrongKey, got {other:?}"),
    }
    for len in [0, 1, 60, 62] {
        let mut b = w.blob.clone();
        b.resize(len, 0);
        let err = p.unwrap(&b, b"ctx").await.unwrap_err();
        assert!(
            matches!(err, ProviderError::WrongKey { .. }),
            "length {len}: {err:?}"
        );
    }
    // The original still opens: the failures left the sessions usable.
    assert_eq!(&p.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key(1)[..]);
}

#[tokio::test]
async fn a_second_key_cannot_unwrap_the_firsts_blob() {
    if !in_own_process("a_second_key_cannot_unwrap_the_firsts_blob") {
        return;
    }
    let token = Token::new("two");
    token.keygen("tenant-a");
    token.keygen("tenant-b");
    let a = connect(&token, "tenant-a").await;
    let b = connect(&token, "tenant-b").await;
    let w = a.wrap(&key(7), b"ctx").await.unwrap();
    match b.unwrap(&w.blob, b"ctx").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("expected WrongKey, got {other:?}"),
    }
    assert_eq!(&a.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key(7)[..]);
}

#[tokio::test]
async fn a_key_deleted_on_the_token_is_not_found_on_the_next_call() {
    if !in_own_process("a_key_deleted_on_the_token_is_not_found_on_the_next_call") {
        return;
    }
    let token = Token::new("del");
    token.keygen("tenant");
    let p = connect(&token, "tenant").await;
    let w = p.wrap(&key(3), b"ctx").await.unwrap();
    assert_eq!(&p.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key(3)[..]);

    token.delete_key("tenant");
    match p.unwrap(&w.blob, b"ctx").await {
        Err(ProviderError::KeyNotFound { .. }) => {}
        other => panic!("unwrap after delete: expected KeyNotFound, got {other:?}"),
    }
    match p.wrap(&key(3), b"ctx").await {
        Err(ProviderError::KeyNotFound { .. }) => {}
        other => panic!("wrap after delete: expected KeyNotFound, got {other:?}"),
    }
    // A new key under the same label is another key: the old blob stays unreadable.
    token.keygen("tenant");
    match p.unwrap(&w.blob, b"ctx").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("recreated key: expected WrongKey, got {other:?}"),
    }
    // A connect to a deleted key fails too.
    token.delete_key("tenant");
    match Pkcs11Provider::connect(&token.config("tenant")).await {
        Err(ProviderError::KeyNotFound { .. }) => {}
        other => panic!("connect: expected KeyNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_disabled_on_the_token_is_revoked_until_restored() {
    if !in_own_process("a_key_disabled_on_the_token_is_revoked_until_restored") {
        return;
    }
    let token = Token::new("revoke");
    token.keygen("tenant");
    let p = connect(&token, "tenant").await;
    let w = p.wrap(&key(4), b"ctx").await.unwrap();

    token.set_usage("tenant", false);
    match p.unwrap(&w.blob, b"ctx").await {
        Err(ProviderError::Revoked { .. }) => {}
        other => panic!("unwrap: expected Revoked, got {other:?}"),
    }
    match p.wrap(&key(4), b"ctx").await {
        Err(ProviderError::Revoked { .. }) => {}
        other => panic!("wrap: expected Revoked, got {other:?}"),
    }
    token.set_usage("tenant", true);
    assert_eq!(&p.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key(4)[..]);
}

#[tokio::test]
async fn two_keys_with_one_label_are_a_config_error() {
    if !in_own_process("two_keys_with_one_label_are_a_config_error") {
        return;
    }
    let token = Token::new("dup");
    token.keygen("twice");
    token.keygen("twice");
    match Pkcs11Provider::connect(&token.config("twice")).await {
        Err(ProviderError::Config { reason, .. }) => {
            assert!(reason.contains("2 secret keys"), "{reason}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_pin_is_denied_at_connect() {
    if !in_own_process("a_wrong_pin_is_denied_at_connect") {
        return;
    }
    let token = Token::new("pin");
    token.keygen("master");
    let pin_file = token.pin_file_with("wrong", "not-the-pin", 0o600);
    let cfg = config_with(MODULE.as_ref(), &token.label, &pin_file, "master");
    match Pkcs11Provider::connect(&cfg).await {
        Err(ProviderError::Denied { reason, .. }) => {
            assert!(!reason.contains("not-the-pin"), "{reason}")
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn an_open_pin_file_is_refused_naming_it() {
    if !in_own_process("an_open_pin_file_is_refused_naming_it") {
        return;
    }
    let token = Token::new("mode");
    token.keygen("master");
    let pin_file = token.pin_file_with("open", &token.pin.clone(), 0o644);
    let cfg = config_with(MODULE.as_ref(), &token.label, &pin_file, "master");
    match Pkcs11Provider::connect(&cfg).await {
        Err(e @ ProviderError::Config { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&pin_file.display().to_string()), "{msg}");
            assert!(msg.contains("0644"), "{msg}");
            assert!(!msg.contains(&token.pin), "{msg}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_token_is_a_clear_error() {
    if !in_own_process("a_missing_token_is_a_clear_error") {
        return;
    }
    let token = Token::new("notok");
    let cfg = config_with(
        MODULE.as_ref(),
        "no-such-token-label",
        &token.pin_file_with("pin", "1234", 0o600),
        "master",
    );
    match Pkcs11Provider::connect(&cfg).await {
        Err(ProviderError::Config { reason, .. }) => {
            assert!(
                reason.contains("no token labelled \"no-such-token-label\""),
                "{reason}"
            );
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_module_is_a_clear_error() {
    if !in_own_process("a_missing_module_is_a_clear_error") {
        return;
    }
    let token = Token::new("nomod");
    let cfg = config_with(
        "/nonexistent/libpkcs11.so".as_ref(),
        &token.label,
        &token.pin_file_with("pin", &token.pin.clone(), 0o600),
        "master",
    );
    match Pkcs11Provider::connect(&cfg).await {
        Err(ProviderError::Config { reason, .. }) => {
            assert!(reason.contains("/nonexistent/libpkcs11.so"), "{reason}");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

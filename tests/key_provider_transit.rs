//! The Transit key provider against a real OpenBao (`bao server -dev`, tests/common/openbao.rs):
//! wrap/unwrap, rotation, and each failure typed as the caller needs it (wrong context, altered
//! blob, another key's blob, deleted key, revoked token, too-open token file, server down,
//! server silent, http:// off loopback, min_decryption_version).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::openbao::OpenBao;
use eugate::keys::provider::{
    KeyProvider, ProviderConfig, ProviderError, ProviderKind, ProviderSettings, TransitConfig,
    TransitProvider, WRAPPED_KEY_LEN,
};
use zeroize::Zeroizing;

fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn config(address: &str, key: &str, token_file: PathBuf, ca: Option<PathBuf>) -> ProviderConfig {
    ProviderConfig {
        name: "bao".into(),
        timeout: Duration::from_secs(5),
        settings: ProviderSettings::Transit(TransitConfig {
            address: address.into(),
            mount: "transit".into(),
            key: key.into(),
            token_file,
            ca_bundle: ca,
            namespace: None,
        }),
    }
}

/// A provider for `key` with a token limited to that key.
async fn provider(bao: &OpenBao, key: &str) -> TransitProvider {
    let tok = bao.limited_token(key);
    let file = token_file(bao.dir(), &format!("token-{key}"), &tok);
    TransitProvider::connect(&config(&bao.address, key, file, bao.ca.clone()))
        .await
        .unwrap()
}

fn random_key() -> Zeroizing<[u8; WRAPPED_KEY_LEN]> {
    use rand::RngCore;
    let mut k = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
    rand::thread_rng().fill_bytes(&mut k[..]);
    k
}

#[tokio::test]
async fn round_trip_and_rotation() {
    let bao = OpenBao::start();
    bao.create_key("master");
    let p = provider(&bao, "master").await;
    assert_eq!(p.kind(), ProviderKind::Transit);
    assert_eq!(
        p.key_ref(),
        format!("transit:{}/transit/keys/master", bao.address)
    );
    p.probe().await.unwrap();

    let key = random_key();
    let w1 = p.wrap(&key, b"tenant acme / object 1").await.unwrap();
    assert_eq!(w1.key_version, 1);
    assert!(w1.blob.starts_with(b"vault:v1:"), "{w1:?}");
    assert!(!w1.blob.windows(8).any(|w| key.windows(8).any(|k| k == w)));
    let back = p.unwrap(&w1.blob, b"tenant acme / object 1").await.unwrap();
    assert_eq!(&back[..], &key[..]);

    bao.rotate_key("master");
    let key2 = random_key();
    let w2 = p.wrap(&key2, b"ctx").await.unwrap();
    assert_eq!(w2.key_version, 2);
    assert!(w2.blob.starts_with(b"vault:v2:"));
    assert_eq!(&p.unwrap(&w2.blob, b"ctx").await.unwrap()[..], &key2[..]);
    // The blob of version 1 still unwraps after the rotation.
    let back = p.unwrap(&w1.blob, b"tenant acme / object 1").await.unwrap();
    assert_eq!(&back[..], &key[..]);

    // Raising min_decryption_version past it: the old blob is revoked, the new one still opens.
    bao.set_min_decryption_version("master", 2);
    let e = p
        .unwrap(&w1.blob, b"tenant acme / object 1")
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Revoked { .. }), "{e}");
    assert_eq!(&p.unwrap(&w2.blob, b"ctx").await.unwrap()[..], &key2[..]);
}

#[tokio::test]
async fn wrong_context_altered_blob_and_other_keys_blob_are_wrong_key() {
    let bao = OpenBao::start();
    bao.create_key("a");
    bao.create_key("b");
    let pa = provider(&bao, "a").await;
    let pb = provider(&bao, "b").await;
    let key = random_key();
    let w = pa.wrap(&key, b"object 1").await.unwrap();

    for ctx in [&b"object 2"[..], b"", b"object 1 "] {
        let e = pa.unwrap(&w.blob, ctx).await.unwrap_err();
        assert!(matches!(e, ProviderError::WrongKey { .. }), "{ctx:?}: {e}");
    }

    // Altered: one base64 character of the sealed part, the version, a truncation, garbage.
    let mut flipped = w.blob.clone();
    let i = flipped.len() - 6;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let mut other_version = w.blob.clone();
    other_version[7] = b'7';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("one character", flipped),
        ("version", other_version),
        ("truncated", w.blob[..w.blob.len() - 8].to_vec()),
        ("no prefix", w.blob[9..].to_vec()),
        ("json", br#"vault:v1:","plaintext":"x"#.to_vec()),
        ("binary", vec![0xff; 40]),
        ("empty", Vec::new()),
    ];
    for (what, blob) in cases {
        let e = pa.unwrap(&blob, b"object 1").await.unwrap_err();
        assert!(matches!(e, ProviderError::WrongKey { .. }), "{what}: {e}");
    }

    // Key b's provider cannot open key a's blob (same context, same server).
    let e = pb.unwrap(&w.blob, b"object 1").await.unwrap_err();
    assert!(matches!(e, ProviderError::WrongKey { .. }), "{e}");
    // And the original still opens.
    assert_eq!(
        &pa.unwrap(&w.blob, b"object 1").await.unwrap()[..],
        &key[..]
    );
}

#[tokio::test]
async fn deleted_key_is_key_not_found() {
    let bao = OpenBao::start();
    bao.create_key("gone");
    let p = provider(&bao, "gone").await;
    let key = random_key();
    let w = p.wrap(&key, b"ctx").await.unwrap();
    bao.delete_key("gone");
    let e = p.unwrap(&w.blob, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::KeyNotFound { .. }), "{e}");
    // Encrypt to a missing key answers 403 to a token without `create`; still KeyNotFound.
    let e = p.wrap(&key, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::KeyNotFound { .. }), "{e}");
    let e = p.probe().await.unwrap_err();
    assert!(matches!(e, ProviderError::KeyNotFound { .. }), "{e}");
}

#[tokio::test]
async fn revoked_or_wrong_token_is_denied_and_never_shown() {
    let bao = OpenBao::start();
    bao.create_key("k");
    bao.create_key("other");
    let tok = bao.limited_token("k");
    let file = token_file(bao.dir(), "tok", &tok);
    let p = TransitProvider::connect(&config(&bao.address, "k", file, None))
        .await
        .unwrap();
    let key = random_key();
    let w = p.wrap(&key, b"ctx").await.unwrap();

    // The same token on a key its policy does not cover: denied (the key exists).
    let file = token_file(bao.dir(), "tok-other", &tok);
    let other = TransitProvider::connect(&config(&bao.address, "other", file, None))
        .await
        .unwrap();
    let e = other.wrap(&key, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Denied { .. }), "{e}");

    bao.revoke_token(&tok);
    for e in [
        p.wrap(&key, b"ctx").await.unwrap_err(),
        p.unwrap(&w.blob, b"ctx").await.unwrap_err(),
    ] {
        assert!(matches!(e, ProviderError::Denied { .. }), "{e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(&tok), "token leaked: {text}");
    }
    assert!(!format!("{p:?}").contains(&tok));
}

#[tokio::test]
async fn token_file_others_can_read_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), "bao-token", "s.notused");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = TransitProvider::connect(&config("http://127.0.0.1:8200", "k", file.clone(), None))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Config { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&file.display().to_string()) && text.contains("0644"),
        "{text}"
    );
    assert!(!text.contains("s.notused"), "{text}");

    // Missing and empty token files are refused too, named.
    let missing = dir.path().join("nope");
    let e = TransitProvider::connect(&config("http://127.0.0.1:8200", "k", missing, None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Config { .. }) && e.to_string().contains("nope"),
        "{e}"
    );
    let empty = token_file(dir.path(), "empty", "");
    let e = TransitProvider::connect(&config("http://127.0.0.1:8200", "k", empty, None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Config { .. }) && e.to_string().contains("empty"),
        "{e}"
    );
}

#[tokio::test]
async fn addresses_off_loopback_need_https_and_a_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), "tok", "s.x");
    for address in [
        "http://10.1.2.3:8200",
        "http://bao.example:8200",
        "http://localhost.example:8200",
        "https://bao.example:8200", // no ca_bundle
        "ftp://127.0.0.1:8200",
        "http://127.0.0.1:8200/v1/x",
        "127.0.0.1:8200",
    ] {
        let e = TransitProvider::connect(&config(address, "k", file.clone(), None))
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Config { .. }), "{address}: {e}");
    }
    for ok in [
        "http://127.0.0.1:8200",
        "http://[::1]:8200",
        "http://localhost:8200/",
    ] {
        TransitProvider::connect(&config(ok, "k", file.clone(), None))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    // Key and mount names that would change the request path.
    let mut cfg = config("http://127.0.0.1:8200", "../sys", file.clone(), None);
    assert!(matches!(
        TransitProvider::connect(&cfg).await.unwrap_err(),
        ProviderError::Config { .. }
    ));
    cfg.settings = ProviderSettings::Transit(TransitConfig {
        mount: "transit/../sys".into(),
        ..match cfg.settings {
            ProviderSettings::Transit(t) => t,
            _ => unreachable!(),
        }
    });
    assert!(matches!(
        TransitProvider::connect(&cfg).await.unwrap_err(),
        ProviderError::Config { .. }
    ));
}

#[tokio::test]
async fn stopped_server_is_unreachable() {
    let mut bao = OpenBao::start();
    bao.create_key("k");
    let p = provider(&bao, "k").await;
    let key = random_key();
    let w = p.wrap(&key, b"ctx").await.unwrap();
    bao.stop();
    let e = p.unwrap(&w.blob, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Unreachable { .. }), "{e}");
    assert!(e.is_unavailable());
    let e = p.wrap(&key, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn paused_server_times_out() {
    let mut bao = OpenBao::start();
    bao.create_key("k");
    let tok = bao.limited_token("k");
    let file = token_file(bao.dir(), "tok", &tok);
    let mut cfg = config(&bao.address, "k", file, None);
    cfg.timeout = Duration::from_secs(1);
    let p = TransitProvider::connect(&cfg).await.unwrap();
    let key = random_key();
    let w = p.wrap(&key, b"ctx").await.unwrap();
    bao.pause();
    let e = p.unwrap(&w.blob, b"ctx").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{e}"
    );
    bao.resume();
    assert_eq!(&p.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key[..]);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts, reads everything, never writes a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), "tok", "s.whatever");
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), "k", file, None);
    cfg.timeout = Duration::from_secs(1);
    let p = TransitProvider::connect(&cfg).await.unwrap();
    let e = p.wrap(&random_key(), b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e}");
    assert!(e.is_unavailable());
    let e = p.unwrap(b"vault:v1:AAAA", b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e}");
}

#[tokio::test]
async fn https_with_the_dev_servers_ca() {
    let bao = OpenBao::start_tls();
    bao.create_key("k");
    let ca = bao.ca.clone().unwrap();
    let p = provider(&bao, "k").await;
    assert!(p.key_ref().starts_with("transit:https://127.0.0.1:"));
    let key = random_key();
    let w = p.wrap(&key, b"ctx").await.unwrap();
    assert_eq!(&p.unwrap(&w.blob, b"ctx").await.unwrap()[..], &key[..]);

    // Another CA: the server's certificate is not trusted, and that is not "unreachable".
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = other_dir.path().join("other-ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(&other_ca, pem_certificate(cert.cert.der())).unwrap();
    let tok = bao.limited_token("k");
    let file = token_file(bao.dir(), "tok2", &tok);
    let p2 = TransitProvider::connect(&config(&bao.address, "k", file.clone(), Some(other_ca)))
        .await
        .unwrap();
    let e = p2.wrap(&key, b"ctx").await.unwrap_err();
    assert!(matches!(e, ProviderError::Protocol { .. }), "{e}");

    // A CA bundle with plain http:// is refused (TLS would silently not be used).
    let http = bao.address.replace("https://", "http://");
    let e = TransitProvider::connect(&config(&http, "k", file, Some(ca)))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Config { .. }), "{e}");
}

fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

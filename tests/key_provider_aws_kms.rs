//! The AWS KMS key provider against a local KMS-compatible server: moto's `moto_server` (PyPI
//! `moto[server]`), an in-memory emulation of the KMS JSON API (real AES-GCM with the
//! encryption context as AAD, but no key states: disabled keys still work there, so `Revoked`
//! is covered by the unit tests of the error mapping only). Also: an address where nothing
//! listens, and one that accepts and never answers.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::{Credentials, Region};
use eugate::config::S3Credentials;
use eugate::keys::provider::{
    AwsKmsConfig, AwsKmsProvider, KeyProvider, ProviderConfig, ProviderError, ProviderKind,
    ProviderSettings, WRAPPED_KEY_LEN,
};
use zeroize::Zeroizing;

// Only the port reservations of the shared harness: nothing else of it is needed here.
#[path = "common/ports.rs"]
#[allow(dead_code)]
mod ports;

const REGION: &str = "eu-central-1";

/// A `moto_server` on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = ports::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn admin(&self) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::config::Builder::new()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    async fn create_key(&self) -> String {
        let out = self.admin().create_key().send().await.unwrap();
        out.key_metadata().unwrap().key_id().to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(endpoint: &str, key_id: &str, timeout: Duration) -> ProviderConfig {
    ProviderConfig {
        name: "kms".into(),
        timeout,
        settings: ProviderSettings::AwsKms(AwsKmsConfig {
            region: REGION.into(),
            key_id: key_id.into(),
            endpoint: Some(endpoint.into()),
            // moto accepts any credentials; these come from the environment of the test.
            credentials: S3Credentials::File(creds_file().into()),
        }),
    }
}

/// A 0600 credentials file (the provider refuses open ones), shared by the tests.
fn creds_file() -> String {
    use std::os::unix::fs::PermissionsExt;
    static FILE: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    let f = FILE.get_or_init(|| {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            "access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        )
        .unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        f
    });
    f.path().display().to_string()
}

fn key(byte: u8) -> Zeroizing<[u8; WRAPPED_KEY_LEN]> {
    Zeroizing::new([byte; WRAPPED_KEY_LEN])
}

#[tokio::test]
async fn round_trip_context_tamper_and_other_key() {
    let moto = Moto::start();
    let a = moto.create_key().await;
    let b = moto.create_key().await;
    let p = AwsKmsProvider::connect(&config(&moto.endpoint, &a, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(p.kind(), ProviderKind::AwsKms);
    assert!(p.key_ref().contains(&a), "{}", p.key_ref());

    let w = p.wrap(&key(9), b"object 1").await.unwrap();
    assert_eq!(w.key_version, 1);
    assert!(!w.blob.windows(8).any(|x| x == [9u8; 8]));
    assert_eq!(
        &p.unwrap(&w.blob, b"object 1").await.unwrap()[..],
        &key(9)[..]
    );
    p.probe().await.unwrap();

    match p.unwrap(&w.blob, b"object 2").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("other context: expected WrongKey, got {other:?}"),
    }
    let mut bad = w.blob.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    match p.unwrap(&bad, b"object 1").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("altered blob: expected WrongKey, got {other:?}"),
    }
    match p.unwrap(&[], b"object 1").await {
        Err(ProviderError::WrongKey { .. }) => {}
        other => panic!("empty blob: expected WrongKey, got {other:?}"),
    }

    // Key b cannot open a's blob. Real KMS answers IncorrectKeyException (WrongKey); moto
    // answers AccessDeniedException (Denied). Either way it must not open.
    let pb = AwsKmsProvider::connect(&config(&moto.endpoint, &b, Duration::from_secs(30)))
        .await
        .unwrap();
    match pb.unwrap(&w.blob, b"object 1").await {
        Err(ProviderError::WrongKey { .. } | ProviderError::Denied { .. }) => {}
        other => panic!("other key: expected WrongKey or Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_key_is_not_found() {
    let moto = Moto::start();
    let p = AwsKmsProvider::connect(&config(
        &moto.endpoint,
        "11111111-2222-3333-4444-555555555555",
        Duration::from_secs(30),
    ))
    .await
    .unwrap();
    match p.wrap(&key(1), b"ctx").await {
        Err(ProviderError::KeyNotFound { .. }) => {}
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
    match p.probe().await {
        Err(ProviderError::KeyNotFound { .. }) => {}
        other => panic!("probe: expected KeyNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = ports::free_port();
    let p = AwsKmsProvider::connect(&config(
        &format!("http://127.0.0.1:{port}"),
        "alias/eugate",
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    let err = p.wrap(&key(1), b"ctx").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unreachable { .. }),
        "expected Unreachable, got {err:?}"
    );
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections (the backlog does) and never reads or answers.
    let p = AwsKmsProvider::connect(&config(
        &format!("http://127.0.0.1:{port}"),
        "alias/eugate",
        Duration::from_secs(1),
    ))
    .await
    .unwrap();
    let err = p.unwrap(&[1u8; 100], b"ctx").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Timeout { .. }),
        "expected Timeout, got {err:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn a_missing_credential_variable_fails_at_connect() {
    let mut cfg = config("http://127.0.0.1:9", "alias/eugate", Duration::from_secs(5));
    if let ProviderSettings::AwsKms(k) = &mut cfg.settings {
        k.credentials = S3Credentials::Env {
            prefix: "EUGATE_TEST_NO_SUCH_PREFIX".into(),
        };
    }
    match AwsKmsProvider::connect(&cfg).await {
        Err(ProviderError::Config { reason, .. }) => {
            assert!(
                reason.contains("EUGATE_TEST_NO_SUCH_PREFIX_SECRET_ACCESS_KEY"),
                "{reason}"
            )
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

//! A real Garage S3 server for integration tests, on loopback ports, in a temp directory.
//!
//! The binary comes from `EUGATE_GARAGE_BIN`, else `garage` on PATH; `scripts/test` installs it.
//! A missing binary fails the test with the fix rather than skipping it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Moved to tests/common; re-exported so that `garage::eventually` keeps working.
pub use crate::common::eventually;
use crate::common::{Gateway, free_port, scripts};

pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub struct Garage {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub s3_port: u16,
    pub region: String,
    child: Option<Child>,
}

pub fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EUGATE_GARAGE_BIN") {
        return PathBuf::from(p);
    }
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/opt/eugate-tools/bin")])
    {
        let candidate = dir.join("garage");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "the Garage S3 server is not installed: run scripts/test (it installs garage), \
         or set EUGATE_GARAGE_BIN to a garage binary"
    );
}

impl Garage {
    /// Starts a single-node Garage whose S3 API reports `region`, with one bucket per name in
    /// `buckets`, all readable and writable with `ACCESS_KEY`/`SECRET_KEY`.
    pub fn start(region: &str, buckets: &[&str]) -> Garage {
        let g = Garage::node(region, 1);
        let node = g.node_id();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.provision(buckets);
        g
    }

    /// Starts `n` Garage nodes on loopback that form one cluster storing every block on all of
    /// them (`replication_factor = n`, one zone per node), with `buckets` as in [`Garage::start`].
    /// Every node serves the S3 API on its own port; writes need a quorum, so with `n = 3` any
    /// two nodes keep the cluster writable.
    pub fn cluster(region: &str, buckets: &[&str], n: usize) -> Vec<Garage> {
        let nodes: Vec<Garage> = (0..n).map(|_| Garage::node(region, n)).collect();
        let first = &nodes[0];
        for other in &nodes[1..] {
            let id = other.cli(&["node", "id", "-q"]);
            first.cli(&["node", "connect", id.trim()]);
        }
        for (i, node) in nodes.iter().enumerate() {
            let zone = format!("dc{}", i + 1);
            first.cli(&["layout", "assign", "-z", &zone, "-c", "1G", &node.node_id()]);
        }
        first.cli(&["layout", "apply", "--version", "1"]);
        for node in &nodes {
            assert!(
                eventually(60, || node
                    .cli(&["layout", "show"])
                    .contains("Current cluster layout version: 1")),
                "node on {} never saw the cluster layout:\n{}",
                node.s3_port,
                node.cli(&["status"])
            );
        }
        first.provision(buckets);
        nodes
    }

    /// One node, not yet in any layout: its config in a fresh temp directory, started.
    fn node(region: &str, replication: usize) -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6"

[s3_api]
s3_region = "{region}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "eugate-test-admin-token"
"#,
                d = dir.path().display()
            ),
        )
        .unwrap();
        let mut g = Garage {
            dir,
            config,
            s3_port: s3,
            region: region.to_string(),
            child: None,
        };
        g.spawn();
        g
    }

    /// The test key and `buckets`, each readable and writable with it.
    fn provision(&self, buckets: &[&str]) {
        self.cli(&[
            "key", "import", "--yes", "-n", "eugate", ACCESS_KEY, SECRET_KEY,
        ]);
        for b in buckets {
            self.cli(&["bucket", "create", b]);
            self.cli(&[
                "bucket", "allow", "--read", "--write", "--owner", b, "--key", "eugate",
            ]);
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start garage");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .arg("status")
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "garage did not become ready: {}\nlog: {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn node_id(&self) -> String {
        let out = self.cli(&["node", "id", "-q"]);
        out.trim().split('@').next().unwrap().to_string()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the node has logged (warnings and errors) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same node again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `[destinations.NAME]` block for an S3 destination on this Garage, as the operator of a
/// self-hosted store writes it: the region the bucket must report and the declared country.
/// Credentials come from `GARAGE_ACCESS_KEY_ID` / `GARAGE_SECRET_ACCESS_KEY` ([`gateway_env`]).
pub fn destination_toml(
    name: &str,
    endpoint: &str,
    bucket: &str,
    region: &str,
    country: &str,
) -> String {
    format!(
        r#"
[destinations.{name}]
kind = "s3"
provider = "self-hosted"
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
country = "{country}"
path_style = true
credentials = {{ env = "GARAGE" }}
"#
    )
}

/// A `[tenants.TENANT]` block routed to `destination` under `TENANT/`, with key-only users
/// (`<user>.pub` in the test directory) that may read, write and delete.
pub fn tenant_toml(tenant: &str, destination: &str, users: &[&str]) -> String {
    let mut out = format!(
        r#"
[tenants.{tenant}]
route = {{ destination = "{destination}", prefix = "{tenant}/" }}
classification = "personal"
"#
    );
    for u in users {
        out.push_str(&format!(
            r#"
[tenants.{tenant}.users.{u}]
authorized_keys_file = "{u}.pub"
permissions = ["read", "write", "delete"]
"#
        ));
    }
    out
}

/// The gateway's environment for [`destination_toml`] credentials.
pub fn gateway_env() -> Vec<(String, String)> {
    vec![
        ("GARAGE_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("GARAGE_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
    ]
}

/// A plain S3 client on a Garage instance, for looking at what really landed in a bucket.
pub struct Store {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl Garage {
    pub fn store(&self) -> Store {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .http_client(http)
            .credentials_provider(aws_credential_types::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            ))
            .build();
        Store {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }
}

impl Store {
    /// Every object in the bucket: key and size.
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        self.rt.block_on(async {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .expect("ListObjectsV2");
            out.contents()
                .iter()
                .map(|o| {
                    (
                        o.key().unwrap_or_default().to_string(),
                        o.size().unwrap_or(0) as u64,
                    )
                })
                .collect()
        })
    }

    /// Keys of the multipart uploads in progress.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        self.rt.block_on(async {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .expect("ListMultipartUploads");
            out.uploads()
                .iter()
                .map(|u| u.key().unwrap_or_default().to_string())
                .collect()
        })
    }

    /// Starts a multipart upload (and leaves it open); returns its id.
    pub fn create_upload(&self, bucket: &str, key: &str) -> String {
        self.rt.block_on(async {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("CreateMultipartUpload");
            out.upload_id().unwrap_or_default().to_string()
        })
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("GetObject");
            out.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.rt.block_on(async {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.to_vec().into())
                .send()
                .await
                .expect("PutObject");
        })
    }

    /// CopyObject with `If-None-Match: *`: the HTTP status the store answered.
    pub fn copy_if_none_match(&self, bucket: &str, from: &str, to: &str) -> u16 {
        self.rt.block_on(async {
            match self
                .client
                .copy_object()
                .bucket(bucket)
                .key(to)
                .copy_source(format!("{bucket}/{from}"))
                .if_none_match("*")
                .send()
                .await
            {
                Ok(_) => 200,
                Err(e) => e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
            }
        })
    }

    /// User metadata of an object.
    pub fn metadata(&self, bucket: &str, key: &str) -> std::collections::HashMap<String, String> {
        self.rt.block_on(async {
            let out = self
                .client
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("HeadObject");
            out.metadata().cloned().unwrap_or_default()
        })
    }
}

/// The paramiko `put-pause` client in the background: writes `mib` MiB of seeded bytes, creates
/// `<signal>.paused`, waits for `<signal>.go`, then writes `after` MiB more and closes.
pub struct Paused {
    pub child: Child,
    signal: PathBuf,
    pub name: String,
}

impl Paused {
    /// Uploads `/<name>` as `user`; the signal files live in the gateway's test directory.
    pub fn start(gw: &Gateway, user: &str, name: &str, mib: usize, after: usize) -> Paused {
        Paused::start_on(gw, gw.port, user, name, mib, after)
    }

    /// As [`Paused::start`], connecting to `port` (a balancer in front of `gw` and its twins).
    pub fn start_on(
        gw: &Gateway,
        port: u16,
        user: &str,
        name: &str,
        mib: usize,
        after: usize,
    ) -> Paused {
        let signal = gw.path(name);
        let child = Command::new("python3")
            .arg(scripts().join("sftp_client.py"))
            .arg("put-pause")
            .args(["--port", &port.to_string(), "--user", user, "--key"])
            .arg(gw.key(user))
            .args(["--path", &format!("/{name}"), "--count", &mib.to_string()])
            .args(["--after", &after.to_string()])
            .arg("--local")
            .arg(&signal)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Paused {
            child,
            signal,
            name: name.to_string(),
        }
    }

    /// Whether the client has written its first `mib` MiB and waits.
    pub fn paused(&self) -> bool {
        Path::new(&format!("{}.paused", self.signal.display())).exists()
    }

    /// Lets the client write the rest and close.
    pub fn go(&self) {
        std::fs::write(format!("{}.go", self.signal.display()), b"").unwrap();
    }

    /// Waits until the client has paused and `store` holds the multipart upload of `key`.
    pub fn wait_in_garage(&self, store: &Store, bucket: &str, key: &str, gw: &Gateway) {
        assert!(
            eventually(120, || self.paused()),
            "client {} did not reach its pause:\n{}",
            self.name,
            gw.log()
        );
        assert!(
            eventually(120, || store.uploads(bucket).iter().any(|u| u == key)),
            "the multipart upload of {key} did not start:\n{}",
            gw.log()
        );
    }
}

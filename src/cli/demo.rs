//! `eugate demo`: a working gateway on a fresh machine, no cloud account needed.
//!
//! Creates (if absent) `./eugate-demo/` with a host key, a keyring and master key, a tenant
//! `demo` whose user `demo` logs in with `./eugate-demo/demo_user_key`, and a local
//! destination folder; then serves on 127.0.0.1:2222 and prints the `sftp` command.
//! A second run reuses everything that exists.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ring::rand::SecureRandom;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;

use crate::config::Config;
use crate::keys::Keyring;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Directory holding the demo's keys, config and store.
    #[arg(long, default_value = "eugate-demo", value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let config_file = prepare(dir, args.listen)?;
    let mut config = Config::load(&config_file)?;
    config.server.listen = vec![args.listen];
    let shown = shown_dir(dir);
    let keyring = format!("{shown}/keyring");
    let master = format!("{shown}/master.key");
    super::serve::runtime()?.block_on(super::serve::serve(config, |addrs| {
        let Some(addr) = addrs.first() else { return };
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        println!("eugate demo is listening on {addr}. Connect with:\n");
        println!(
            "  sftp -i {shown}/demo_user_key -P {} -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={shown}/known_hosts demo@{host}\n",
            addr.port()
        );
        println!("Uploads are sealed into {shown}/store/demo/ (ciphertext only). To check one:");
        println!(
            "  eugate decrypt {shown}/store/demo/FILE FILE.plain --keyring {keyring} --master-key-file {master}\n"
        );
        println!("Stop with Ctrl-C.");
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// `./eugate-demo` as the user typed it, for copy-paste commands.
fn shown_dir(dir: &Path) -> String {
    let s = dir.display().to_string();
    if dir.is_absolute() || s.starts_with("./") || s.starts_with("../") {
        s.trim_end_matches('/').to_string()
    } else {
        format!("./{}", s.trim_end_matches('/'))
    }
}

/// Creates whatever is missing; returns the config file.
fn prepare(dir: &Path, listen: SocketAddr) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", dir.display()))?;

    let host_key = dir.join("host_ed25519");
    if !host_key.exists() {
        let key = new_ed25519("eugate-demo-host")?;
        write_private_key(&key, &host_key)?;
    }
    let user_key = dir.join("demo_user_key");
    if !user_key.exists() {
        let key = new_ed25519("demo@eugate-demo")?;
        write_private_key(&key, &user_key)?;
        let public = key
            .public_key()
            .to_openssh()
            .context("encoding the demo user's public key")?;
        std::fs::write(dir.join("demo_user_key.pub"), format!("{public}\n"))
            .context("writing demo_user_key.pub")?;
    }
    let user_public = russh::keys::load_secret_key(&user_key, None)
        .with_context(|| format!("reading {}", user_key.display()))?
        .public_key()
        .to_openssh()
        .context("encoding the demo user's public key")?;

    let mut keyring = Keyring::init(&dir.join("keyring"), &dir.join("master.key"))
        .context("creating the demo keyring")?;
    if keyring.active("demo").is_err() {
        keyring.add_tenant("demo").context("adding tenant demo")?;
        keyring.save().context("saving the demo keyring")?;
    }
    std::fs::create_dir_all(dir.join("store")).context("creating the demo store")?;

    let config_file = dir.join("gateway.toml");
    if !config_file.exists() {
        let text = format!(
            r#"# eugate demo configuration (created by `eugate demo`; edit freely).
[server]
listen = ["{listen}"]
host_keys = ["host_ed25519"]
idle_timeout_secs = 600
max_sessions_per_user = 10
reorder_window = "16MiB"

[keys]
keyring = "keyring"
master_key_file = "master.key"

# No [policy] section: the embedded default residency policy applies.

[destinations.local]
kind = "fs"
root = "store"
country = "DE"

[tenants.demo]
route = {{ destination = "local", prefix = "demo/" }}
classification = "personal"

[tenants.demo.users.demo]
authorized_keys = ["{user_public}"]
permissions = ["read", "write", "delete"]
"#
        );
        std::fs::write(&config_file, text).context("writing gateway.toml")?;
    }
    Ok(config_file)
}

fn new_ed25519(comment: &str) -> anyhow::Result<PrivateKey> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(seed.as_mut())
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    Ok(key)
}

fn write_private_key(key: &PrivateKey, path: &Path) -> anyhow::Result<()> {
    let pem = key
        .to_openssh(LineEnding::LF)
        .context("encoding an OpenSSH private key")?;
    let mut opts = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().ok();
    Ok(())
}

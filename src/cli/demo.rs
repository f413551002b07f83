//! `eugate demo`: a working gateway on a fresh machine, no cloud account needed.
//!
//! Creates (if absent) `./eugate-demo/` with a host key, a keyring and master key, a tenant
//! `demo` whose user `demo` logs in with `./eugate-demo/demo_user_key` over SFTP or with the
//! generated password in `./eugate-demo/demo_user_password` over FTPS, the demo CA and FTPS
//! server certificate (`demo/tls.rs`), and a local destination folder; then serves SFTP on
//! 127.0.0.1:2222, explicit FTPS on 127.0.0.1:2121 and the admin endpoints on 127.0.0.1:9443
//! (`demo/admin.rs`) and prints the `sftp`, `curl` and `lftp` commands. A second run reuses
//! everything that exists.

mod admin;
mod files;
mod officers;
mod tls;

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
    /// Address to listen on for explicit FTPS (AUTH TLS).
    #[arg(long, default_value = "127.0.0.1:2121", value_name = "ADDR")]
    pub ftps_listen: SocketAddr,
    /// Address to listen on for the admin endpoints (HTTPS: /livez, /readyz, /metrics).
    #[arg(long, default_value = "127.0.0.1:9443", value_name = "ADDR")]
    pub admin_listen: SocketAddr,
    /// Directory holding the demo's keys, config and store.
    #[arg(long, default_value = "eugate-demo", value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    if args.ftps_listen.port() == 0 {
        anyhow::bail!("--ftps-listen needs a fixed port (the printed commands name it)");
    }
    let config_file = prepare(dir, &args)?;
    let mut config = Config::load(&config_file)?;
    config.server.listen = vec![args.listen];
    let ftps = match config.ftps.as_mut() {
        Some(f) => {
            f.listen = vec![args.ftps_listen];
            check_password(dir, &config)?;
            Some(args.ftps_listen)
        }
        None => None,
    };
    if let Some(a) = config.admin.as_mut() {
        a.listen = vec![args.admin_listen];
    }
    let shown = shown_dir(dir);
    let console_on = config.console.is_some();
    let admin_listen = args.admin_listen;
    super::serve::runtime()?.block_on(super::serve::serve(config, |bound| {
        let Some(addr) = bound.sftp.first() else {
            return;
        };
        print_sftp(&shown, *addr);
        match ftps {
            Some(ftps) => print_ftps(&shown, bound.ftps.first().copied().unwrap_or(ftps)),
            None => println!(
                "FTPS is off: {shown}/gateway.toml was made by an older eugate and has no [ftps] section.\n\
                 Move it away (keys and store stay) and run `eugate demo` again to get one.\n"
            ),
        }
        match bound.admin.first() {
            Some(addr) => {
                admin::print_on(&shown, *addr);
                if console_on {
                    officers::print_on(&shown, &format!("https://{}:{}", host(*addr), addr.port()));
                }
            }
            None => admin::print_off(&shown, admin_listen),
        }
        let keyring = format!("{shown}/keyring");
        let master = format!("{shown}/master.key");
        println!("Uploads are sealed into {shown}/store/demo/ (ciphertext only). To check one:");
        println!(
            "  eugate decrypt {shown}/store/demo/FILE FILE.plain --keyring {keyring} --master-key-file {master}\n"
        );
        println!("Stop with Ctrl-C.");
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// `[::1]` or `127.0.0.1`, as URLs and `user@host` want it.
fn host(addr: SocketAddr) -> String {
    match addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

fn print_sftp(shown: &str, addr: SocketAddr) {
    println!("eugate demo is listening on {addr}. Connect with:\n");
    println!(
        "  sftp -i {shown}/demo_user_key -P {} -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={shown}/known_hosts demo@{}\n",
        addr.port(),
        host(addr)
    );
}

/// The password stays in its file: the commands read it with `$(cat …)`, so it appears neither
/// here nor in a log (curl then blanks it from its own argv; lftp takes it from the environment).
fn print_ftps(shown: &str, addr: SocketAddr) {
    let (ca, pw) = (
        format!("{shown}/{}", tls::CA_CERT),
        format!("{shown}/{}", files::PASSWORD_FILE),
    );
    let url = format!("ftp://{}:{}", host(addr), addr.port());
    println!(
        "FTPS (explicit, AUTH TLS) on {addr}: user demo, password in {pw}, server certificate from the demo CA {ca}:\n"
    );
    println!("  curl --ssl-reqd --cacert {ca} --user \"demo:$(cat {pw})\" -T FILE {url}/\n");
    println!(
        "  LFTP_PASSWORD=\"$(cat {pw})\" lftp --env-password -u demo -e \"set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}\" {url}\n"
    );
}

/// The password file must still match the config's hash (one of them may have been replaced).
fn check_password(dir: &Path, config: &Config) -> anyhow::Result<()> {
    use argon2::password_hash::PasswordVerifier;
    let Some(hash) = config
        .tenants
        .get("demo")
        .and_then(|t| t.users.get("demo"))
        .and_then(|u| u.password_hash.as_deref())
    else {
        return Ok(());
    };
    let file = dir.join(files::PASSWORD_FILE);
    let made_now = !file.exists();
    let password = files::password(dir)?;
    let matches = argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    if !matches {
        let what = if made_now {
            "was missing; a new password is now in it, but it"
        } else {
            "no longer"
        };
        anyhow::bail!(
            "{f} {what} matches password_hash of user demo in {cfg}; set password_hash to the output of \
             `eugate passwd < {f}`, or move {cfg} away to have the demo write a new one",
            f = file.display(),
            cfg = config.file.display()
        );
    }
    Ok(())
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
fn prepare(dir: &Path, args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let (listen, ftps_listen) = (args.listen, args.ftps_listen);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", dir.display()))?;

    let host_key = dir.join("host_ed25519");
    if host_key.exists() {
        files::check_secret(&host_key)?;
    } else {
        let key = new_ed25519("eugate-demo-host")?;
        write_private_key(&key, &host_key)?;
    }
    let user_key = dir.join("demo_user_key");
    if user_key.exists() {
        files::check_secret(&user_key)?;
    } else {
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

    tls::ensure(dir)?;
    officers::ensure(dir)?;
    write_policies(dir)?;

    let config_file = dir.join("gateway.toml");
    if !config_file.exists() {
        // The password is made with the config that holds its hash (or read, if only the
        // config was deleted).
        let password_hash = super::passwd::hash(files::password(dir)?.as_bytes())?;
        let (ftps_cert, ftps_key) = (tls::SERVER_CERT, tls::SERVER_KEY);
        let admin = admin::section(args.admin_listen);
        let console = officers::section(dir)?;
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

# The residency policy: a copy of the shipped bundle, reloaded on change; approved console
# proposals are written here.
[policy]
dir = "policies"
watch = true

# A new store: every object in it has format version 3's fixed-length header, so a listing
# computes plaintext sizes without reading each file.
[storage]
legacy_objects = false

[destinations.local]
kind = "fs"
root = "store"
country = "DE"

# Explicit FTPS (AUTH TLS). The certificate is signed by the demo CA in ftps-ca.pem.
[ftps]
listen = ["{ftps_listen}"]
certificate = "{ftps_cert}"
private_key = "{ftps_key}"
passive_ports = "50000-50100"

# Admin endpoints (HTTPS): /livez, /readyz, /metrics, with the FTPS server certificate above.
{admin}
{console}
[tenants.demo]
route = {{ destination = "local", prefix = "demo/" }}
classification = "personal"

[tenants.demo.users.demo]
authorized_keys = ["{user_public}"]
# argon2id of the password in demo_user_password (FTPS logins).
password_hash = "{password_hash}"
permissions = ["read", "write", "delete"]
"#
        );
        std::fs::write(&config_file, text).context("writing gateway.toml")?;
    }
    Ok(config_file)
}

/// The shipped policy bundle, written once, so that console proposals have a directory to go to.
fn write_policies(dir: &Path) -> anyhow::Result<()> {
    let target = dir.join("policies");
    if target.exists() {
        return Ok(());
    }
    for (name, text) in crate::policy::embedded_sources() {
        let path = target.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
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
    files::write_secret(path, pem.as_bytes())
}

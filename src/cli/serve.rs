//! `eugate serve --config FILE`: run the SFTP gateway until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::admin::{AdminServer, AdminState, Readiness};
use crate::audit::{AuditEvent, AuditLog};
use crate::config::Config;
use crate::frontend::admission::Admission;
use crate::frontend::ftps::FtpsServer;
use crate::frontend::sftp::SftpServer;
use crate::keys::KeyringStore;
use crate::policy::{PolicyBundle, PolicyStore, spawn_reloader};
use crate::transfer::Gateway;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The gateway configuration (see README "Running the gateway").
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    runtime()?.block_on(serve(config, |_: &Bound| {}))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The addresses each listener actually bound (a configured port 0 shows its real port here).
#[derive(Debug, Default)]
pub(crate) struct Bound {
    pub sftp: Vec<SocketAddr>,
    pub ftps: Vec<SocketAddr>,
    pub ftps_implicit: Vec<SocketAddr>,
    pub admin: Vec<SocketAddr>,
}

/// Opens keys and policy, builds the gateway, binds, calls `ready` with the bound addresses, and
/// serves until a shutdown signal.
pub(crate) async fn serve(config: Config, ready: impl FnOnce(&Bound)) -> anyhow::Result<()> {
    // A master key held by a provider is asked for the keyring key now: unreachable, revoked
    // or wrong, the gateway refuses to start (nothing could be sealed).
    let master = crate::keys::MasterKey::from_config(&config.keys)
        .await
        .context("cannot set up the master key named in [keys]")?;
    let keys = KeyringStore::open_with(&config.keys.keyring, master)
        .await
        .context("cannot open the keyring named in [keys]")?;
    tracing::info!(version = %keys.current().version(), "keyring loaded");
    let bundle = match &config.policy.dir {
        Some(dir) => PolicyBundle::load(dir)
            .with_context(|| format!("cannot load the policy directory {}", dir.display()))?,
        None => PolicyBundle::embedded(),
    };
    tracing::info!(bundle = %bundle.hash(), "policy bundle loaded");
    // The same bar as a reload: a bundle whose own tests fail never decides anything.
    let report = bundle.run_tests();
    if !report.passed() {
        return Err(crate::policy::PolicyError::TestsFailed(report.failures))
            .context("refusing to start; run `eugate policy test --policies DIR` for details");
    }
    if report.total == 0 {
        tracing::warn!(
            "the policy bundle has no tests (tests/*.toml in the policy directory): nothing shows that its rules decide as intended"
        );
    } else {
        tracing::info!(cases = report.total, "policy bundle passes its own tests");
    }
    let store = PolicyStore::new(bundle);
    let audit = Arc::new(
        AuditLog::open(&config.audit.file)
            .with_context(|| {
                format!(
                    "cannot open the audit log {} (set [audit] file in the config)",
                    config.audit.file.display()
                )
            })?
            .with_field_cap(config.audit.max_field_bytes)
            .with_instance(&config.server.instance_id),
    );
    audit
        .append(&AuditEvent::Lifecycle {
            action: "start".into(),
            detail: format!(
                "config {}, policy bundle {}, keyring {}",
                config.file.display(),
                store.current().hash(),
                keys.current().version()
            ),
        })
        .context("cannot write the audit log")?;
    let gateway = Gateway::new(&config, keys.clone(), store.clone(), audit.clone())
        .await
        .context("cannot start the gateway")?;
    // After the gateway: it is what audits and counts each reload.
    if let (Some(dir), true) = (&config.policy.dir, config.policy.watch) {
        spawn_reloader(store, dir.clone());
    }
    crate::keys::spawn_reloader(keys);
    let gateway = Arc::new(gateway);
    // One set of connection caps for every protocol.
    let admission = Admission::new(&config.limits);
    let server = SftpServer::new(&config, gateway.clone(), admission.clone())?;
    let listeners = server.bind().await?;
    let mut bound = Bound {
        sftp: local_addrs(&listeners),
        ..Bound::default()
    };
    for a in &bound.sftp {
        tracing::info!(address = %a, "listening");
    }
    let ftps = match &config.ftps {
        Some(f) => {
            let ftps = FtpsServer::new(&config, f, gateway.clone(), admission.clone())?;
            let listeners = ftps.bind().await?;
            bound.ftps = local_addrs(&listeners.explicit);
            bound.ftps_implicit = local_addrs(&listeners.implicit);
            for a in &bound.ftps {
                tracing::info!(address = %a, "listening for FTPS");
            }
            for a in &bound.ftps_implicit {
                tracing::info!(address = %a, "listening for implicit FTPS");
            }
            Some((ftps, listeners))
        }
        None => None,
    };
    let readiness = Arc::new(Readiness::default());
    let admin = start_admin(&config, &gateway, &readiness, &mut bound.admin).await?;
    ready(&bound);
    // One signal stops both front ends: /readyz turns 503 first, and the listeners stay open
    // for `[admin] drain_delay_secs`, so a balancer stops sending before anyone is refused.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let drain_delay = config
        .admin
        .as_ref()
        .map_or(std::time::Duration::ZERO, |a| a.drain_delay);
    {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            readiness.begin_draining();
            if !drain_delay.is_zero() {
                tracing::info!(
                    delay_secs = drain_delay.as_secs(),
                    "shutting down: /readyz answers 503; the listeners close after the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
            }
            let _ = stop_tx.send(true);
        });
    }
    let ftps_run = async {
        if let Some((ftps, listeners)) = ftps {
            ftps.run(listeners, stopped(stop_rx.clone())).await;
        }
    };
    let (report, ()) = tokio::join!(server.run(listeners, stopped(stop_rx.clone())), ftps_run);
    tracing::info!(
        running_at_signal = report.running_at_signal,
        finished = report.finished,
        aborted = report.aborted,
        unfinished = report.unfinished,
        "shutdown complete"
    );
    // Counted refusals are written before the records that close the log.
    gateway.flush_auth_summaries();
    let records = [
        AuditEvent::Shutdown {
            grace_secs: report.grace.as_secs(),
            running_at_signal: report.running_at_signal as u64,
            finished: report.finished,
            aborted: report.aborted,
            unfinished: report.unfinished as u64,
        },
        AuditEvent::Lifecycle {
            action: "stop".into(),
            detail: format!(
                "shutdown signal; {} upload(s) finished within the {} s grace period, {} aborted",
                report.finished,
                report.grace.as_secs(),
                report.aborted
            ),
        },
    ];
    for r in &records {
        if let Err(e) = audit.append(r) {
            tracing::error!(error = %e, "cannot record the shutdown in the audit log");
        }
    }
    if let Some(task) = admin {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds and starts the admin listener if `[admin]` is configured. It answers until the end of
/// the shutdown (then its task is aborted), so `/readyz` says 503 throughout the grace period.
async fn start_admin(
    config: &Config,
    gateway: &Arc<Gateway>,
    readiness: &Arc<Readiness>,
    bound: &mut Vec<SocketAddr>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(admin) = &config.admin else {
        return Ok(None);
    };
    let console = crate::console::Console::new(config, gateway.clone())?;
    let state = Arc::new(AdminState {
        gateway: gateway.clone(),
        readiness: readiness.clone(),
        console,
    });
    let server = AdminServer::new(admin, state).context("cannot start the admin listener")?;
    let listeners = server.bind().await?;
    *bound = local_addrs(&listeners);
    for a in bound.iter() {
        tracing::info!(address = %a, "listening for admin HTTPS (/livez, /readyz, /metrics)");
    }
    Ok(Some(tokio::spawn(server.run(listeners))))
}

fn local_addrs(listeners: &[tokio::net::TcpListener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect()
}

/// Ctrl-C (SIGINT) or SIGTERM. SIGHUP belongs to the keyring and policy reloaders.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

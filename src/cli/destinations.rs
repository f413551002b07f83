//! `eugate destinations --config FILE`: probe every destination now and print where it really
//! is, the evidence, and whether uploads to it are allowed to begin. Exit 1 if any destination
//! is quarantined, so monitoring can call it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, DestinationKind, SELF_HOSTED};
use crate::policy::PolicyBundle;
use crate::storage::Destination;
use crate::storage::Verification;
use crate::storage::fs::FsDestination;
use crate::storage::s3::{Hooks, MemoryBudget, S3Destination};

#[derive(Debug, Args)]
pub struct DestinationsArgs {
    /// The gateway configuration.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DestinationsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let bundle = Arc::new(match &config.policy.dir {
        Some(dir) => PolicyBundle::load(dir)
            .with_context(|| format!("loading the policies in {}", dir.display()))?,
        None => PolicyBundle::embedded(),
    });
    let rt = super::serve::runtime()?;
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        for (name, d) in &config.destinations {
            let (configured, dest): (String, Arc<dyn Destination>) = match &d.kind {
                DestinationKind::Fs {
                    root,
                    country,
                    operator_country,
                } => (
                    format!("fs {} (declared {country})", root.display()),
                    Arc::new(
                        FsDestination::open(name, root, country)
                            .with_context(|| format!("destination {name}"))?
                            .with_operator_country(operator_country.clone()),
                    ),
                ),
                DestinationKind::S3(cfg) => {
                    let bundle = bundle.clone();
                    let hooks = Hooks {
                        catalogued: Arc::new(move |r: &str| {
                            bundle.destinations().any(|d| d.eq_ignore_ascii_case(r))
                        }),
                        on_change: Arc::new(|_| {}),
                    };
                    let s3 = S3Destination::open(
                        name,
                        cfg,
                        &config.storage,
                        MemoryBudget::new(16 << 20),
                        hooks,
                        // Probing uploads nothing: no journal (and no clash with a running
                        // gateway's lock on it).
                        None,
                    )
                    .await
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("destination {name}"))?;
                    let expected = if cfg.provider == SELF_HOSTED {
                        format!(
                            "s3 bucket {} expected {} (self-hosted, declared {})",
                            cfg.bucket,
                            cfg.region,
                            cfg.country.as_deref().unwrap_or("?")
                        )
                    } else {
                        format!(
                            "s3 bucket {} expected {}:{}",
                            cfg.bucket, cfg.provider, cfg.region
                        )
                    };
                    (expected, Arc::new(s3))
                }
            };
            let (location, evidence) = dest.location();
            rows.push((
                name.clone(),
                configured,
                location.to_string(),
                evidence.as_str().to_string(),
                dest.verification(),
            ));
        }
        anyhow::Ok(rows)
    })?;
    let mut quarantined = false;
    for (name, configured, location, evidence, v) in &rows {
        let (observed, detail) = match v {
            Verification::Declared => (None, "operator-declared location".to_string()),
            Verification::Verified {
                observed_region,
                source,
            } => (Some(observed_region.clone()), format!("via {source}")),
            Verification::Quarantined {
                reason,
                observed_region,
            } => {
                quarantined = true;
                (observed_region.clone(), reason.clone())
            }
        };
        let state = v.state().as_str();
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "destination": name,
                    "configured": configured,
                    "state": state,
                    "observed_region": observed,
                    "location": location,
                    "evidence": evidence,
                    "detail": detail,
                })
            );
        } else {
            println!("{name}: {state}");
            println!("  configured: {configured}");
            println!(
                "  observed:   {}",
                observed.as_deref().unwrap_or("(no region reported)")
            );
            println!("  location:   {location} (evidence: {evidence})");
            println!("  detail:     {detail}");
        }
    }
    Ok(if quarantined {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

//! `eugate policy …`: the compliance officer's tools — check, explain, test, diff, replay.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand, ValueEnum};

mod replay;

use crate::policy::explain::ExplainError;
use crate::policy::{
    self, Classification, Day, EXPIRY_WARNING_DAYS, Evidence, PolicyBundle, PolicyError, Request,
};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The policy directory (facts, rules, tests).
    #[arg(long, global = true, value_name = "DIR", default_value = "policies")]
    pub policies: PathBuf,

    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate facts, schema and rules; every error names file, line and what to fix. Exit 1 on error.
    /// Warns about adequacy decisions and attestations that no longer count or stop counting
    /// within 60 days.
    Check {
        /// Look at the dates as of this day instead of today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<Day>,
    },
    /// Decide one transfer and say why. Exit 0 allow, 3 deny, 1 error.
    Explain(ExplainArgs),
    /// Run the expected-decision cases in DIR/tests/. Exit 1 if any fails.
    Test {
        /// Decide the cases that give no `at` as of this day instead of today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<Day>,
    },
    /// Show every catalogued destination × classification × tenant whose decision changes.
    Diff {
        /// The policy directory before the change.
        old: PathBuf,
        /// The policy directory after the change.
        new: PathBuf,
        /// Decide both as of this day instead of today (UTC): what an edit of a dated fact
        /// changes on the day it matters.
        #[arg(long, value_name = "YYYY-MM-DD")]
        at: Option<Day>,
    },
    /// Re-decide audited decisions under a proposed bundle: which real transfers would flip.
    /// Exit 0 (it is a report; see --fail-on-flips), 1 on error.
    Replay(replay::ReplayArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(long)]
    pub tenant: String,
    /// PROVIDER:REGION from regions.toml, or "unknown".
    #[arg(
        long,
        value_name = "PROVIDER:REGION",
        required_unless_present = "declared"
    )]
    pub destination: Option<String>,
    /// A self-hosted store's declared countries instead of a catalogued region, e.g. DE,FR.
    #[arg(long, value_delimiter = ',', conflicts_with = "destination")]
    pub declared: Option<Vec<String>>,
    /// public | internal | personal | special-category; leave out for unclassified (treated as
    /// special-category).
    #[arg(long)]
    pub classification: Option<String>,
    /// probed | attested | unverified
    #[arg(long, default_value = "probed")]
    pub evidence: String,
    #[arg(long, default_value = "policy-explain")]
    pub user: String,
    /// Ask as for a tenant that holds its own key (`[tenants.X] key_provider`); rules see
    /// `context.key_held_by_tenant`.
    #[arg(long)]
    pub key_held_by_tenant: bool,
    /// With --declared: the country whose law governs the store's operator (default: the one
    /// declared country).
    #[arg(long, value_name = "CC")]
    pub operator_country: Option<String>,
    /// Decide as of this day instead of today (UTC): adequacy decisions and attestations count
    /// only within their dates.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub at: Option<Day>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Check { at } => check(&args.policies, at.unwrap_or_else(Day::today_utc)),
        PolicyCommand::Explain(e) => explain(&args.policies, &e),
        PolicyCommand::Test { at } => test(&args.policies, at.unwrap_or_else(Day::today_utc)),
        PolicyCommand::Diff { old, new, at } => diff(&old, &new, at.unwrap_or_else(Day::today_utc)),
        PolicyCommand::Replay(r) => replay::run(&r),
    }
}

/// Loads a bundle; on validation errors prints each as `DIR/file:line: message` and returns None.
fn load_or_report(dir: &Path) -> anyhow::Result<Option<PolicyBundle>> {
    match PolicyBundle::load(dir) {
        Ok(b) => Ok(Some(b)),
        Err(PolicyError::Invalid(problems)) => {
            for p in &problems {
                let file = dir.join(&p.file);
                if p.line == 0 {
                    eprintln!("error: {}: {}", file.display(), p.message);
                } else {
                    eprintln!("error: {}:{}: {}", file.display(), p.line, p.message);
                }
            }
            eprintln!(
                "{} problem(s) in {}; nothing was activated",
                problems.len(),
                dir.display()
            );
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("loading policies from {}", dir.display())),
    }
}

fn check(dir: &Path, today: Day) -> anyhow::Result<ExitCode> {
    let Some(bundle) = load_or_report(dir)? else {
        return Ok(ExitCode::from(1));
    };
    let warnings = bundle.dated_warnings(today, EXPIRY_WARNING_DAYS);
    for w in &warnings {
        println!("warning: {}: {}", dir.join(&w.file).display(), w.message);
    }
    println!(
        "ok: {} rules, {} catalogued destinations, zones {}, {} test cases",
        bundle.rule_count(),
        bundle.destinations().count(),
        bundle.zones().collect::<Vec<_>>().join(", "),
        bundle.cases().len()
    );
    if warnings.is_empty() {
        println!(
            "dates: no adequacy decision or attestation ends within {EXPIRY_WARNING_DAYS} days of {today}"
        );
    }
    println!("bundle {}", bundle.hash());
    Ok(ExitCode::SUCCESS)
}

fn explain(dir: &Path, args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let classification = policy::explain::classification(args.classification.as_deref())?;
    let evidence: Evidence = args.evidence.parse()?;
    let (location, destination) =
        policy::explain::location(args.destination.as_deref(), args.declared.as_deref()).map_err(
            |e| match e {
                ExplainError::NotARegion(d) => {
                    anyhow!("--destination '{d}' must be PROVIDER:REGION, e.g. aws:eu-central-1")
                }
                ExplainError::NoDestination => {
                    anyhow!("give --destination PROVIDER:REGION or --declared CC,CC")
                }
                e => e.into(),
            },
        )?;
    if args.operator_country.is_some() && args.declared.is_none() {
        return Err(anyhow!(
            "--operator-country is for a self-hosted store given with --declared; a catalogued region's operator is in providers.toml"
        ));
    }
    let Some(bundle) = load_or_report(dir)? else {
        return Ok(ExitCode::from(1));
    };
    let req = Request {
        tenant: args.tenant.clone(),
        user: args.user.clone(),
        classification,
        destination,
        location,
        evidence,
        key_held_by_tenant: args.key_held_by_tenant,
        operator_country: args.operator_country.clone(),
    };
    let day = args.at.unwrap_or_else(Day::today_utc);
    let (decision, _grant) = bundle.decide_at(&req, day);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&policy::explain::json(&decision))?
        ),
        Format::Text => print!("{}", policy::explain::text(&decision)),
    }
    Ok(if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn test(dir: &Path, today: Day) -> anyhow::Result<ExitCode> {
    let Some(bundle) = load_or_report(dir)? else {
        return Ok(ExitCode::from(1));
    };
    let report = bundle.run_tests_at(today);
    for f in &report.failures {
        println!(
            "FAIL {}:{}: {}",
            dir.join(&f.file).display(),
            f.line,
            f.name
        );
        let want = match &f.expected_policies {
            Some(p) => format!("{} by [{}]", f.expected, p.join(", ")),
            None => f.expected.clone(),
        };
        println!("  expected: {want}");
        println!(
            "  actual:   {} by [{}]",
            f.actual,
            f.actual_policies.join(", ")
        );
        for (p, r) in f.actual_policies.iter().zip(&f.reasons) {
            println!("    [{p}] {r}");
        }
    }
    println!(
        "{} cases, {} passed, {} failed (bundle {})",
        report.total,
        report.total - report.failures.len(),
        report.failures.len(),
        bundle.hash()
    );
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn diff(old_dir: &Path, new_dir: &Path, day: Day) -> anyhow::Result<ExitCode> {
    let (Some(old), Some(new)) = (load_or_report(old_dir)?, load_or_report(new_dir)?) else {
        return Ok(ExitCode::from(1));
    };
    let changes = policy::diff::diff_at(&old, &new, day);
    for c in &changes {
        let class = c
            .classification
            .map(Classification::as_str)
            .unwrap_or("unclassified");
        println!(
            "{:<36} {:<17} {:<20} {} -> {}  (was [{}], now [{}])",
            c.destination,
            class,
            c.tenant_label(),
            c.old,
            c.new,
            c.old_policies.join(", "),
            c.new_policies.join(", ")
        );
    }
    println!(
        "{} decision(s) change ({} -> {}), as of {day}",
        changes.len(),
        old.hash(),
        new.hash()
    );
    Ok(ExitCode::SUCCESS)
}

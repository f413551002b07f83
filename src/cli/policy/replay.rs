//! `eugate policy replay`: which audited transfers a proposed bundle would decide differently.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::{Format, load_or_report};
use crate::policy::replay::{self, Change, ReplayOptions, Replayed, Report, Window};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The proposed policy directory.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Only decisions of the last DURATION (e.g. 30d, 12h, 2w). Without a window: every record.
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Only decisions at or after this RFC 3339 time (e.g. 2026-12-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only decisions before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// JSON: list only the flipped decisions (the summary still counts all).
    #[arg(long)]
    pub only_flips: bool,
    /// Replay logs whose hash chain does not verify (their records are marked unverified).
    #[arg(long)]
    pub allow_unverified: bool,
    /// Exit 3 when any decision flips (for CI); otherwise a flip is not an error.
    #[arg(long)]
    pub fail_on_flips: bool,
    /// Audit logs (JSON lines), one per gateway instance.
    #[arg(required = true, value_name = "AUDIT_FILE")]
    pub logs: Vec<PathBuf>,
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let window = match &args.since {
        Some(s) => Window::since(s, now_ms())?,
        None => Window::between(args.from.as_deref(), args.to.as_deref())?,
    };
    let Some(bundle) = load_or_report(&args.bundle)? else {
        return Ok(ExitCode::from(1));
    };
    let opts = ReplayOptions {
        window,
        allow_unverified: args.allow_unverified,
    };
    let mut report = replay::replay(&bundle, &args.logs, &opts)
        .with_context(|| format!("replaying under {}", args.bundle.display()))?;
    let flips = report.summary.allow_to_deny + report.summary.deny_to_allow;
    match args.format {
        Format::Json => {
            if args.only_flips {
                report.decisions.retain(Replayed::flipped);
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => print!("{}", text(&report, &args.bundle)),
    }
    Ok(if args.fail_on_flips && flips > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn counts(s: &replay::Summary) -> String {
    format!(
        "{} decision(s): {} unchanged, {} allow -> deny, {} deny -> allow, {} not evaluable",
        s.decisions, s.unchanged, s.allow_to_deny, s.deny_to_allow, s.not_evaluable
    )
}

fn text(r: &Report, dir: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let window = match (&r.window.from, &r.window.to) {
        (None, None) => "all records".to_string(),
        (f, t) => format!(
            "{} .. {}",
            f.as_deref().unwrap_or("start"),
            t.as_deref().unwrap_or("end")
        ),
    };
    let _ = writeln!(
        s,
        "replay of {} log(s) under {} (bundle {}), {window}: {}",
        r.logs.len(),
        dir.display(),
        r.bundle,
        counts(&r.summary)
    );
    for l in r.logs.iter().filter(|l| !l.verified) {
        let _ = writeln!(
            s,
            "warning: {} does not verify ({}); its records are unverified",
            l.path.display(),
            l.problem.as_deref().unwrap_or("")
        );
    }
    for (hash, sum) in &r.by_recorded_bundle {
        let _ = writeln!(s, "  decided by bundle {hash}: {}", counts(sum));
    }
    for (why, n) in &r.summary.not_evaluable_reasons {
        let _ = writeln!(s, "  not evaluable ({n}): {why}");
    }
    for d in r.decisions.iter().filter(|d| d.flipped()) {
        let _ = writeln!(s, "{}", flip_line(d));
    }
    s
}

fn flip_line(d: &Replayed) -> String {
    let rec = &d.record;
    let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
    let new = d.new.as_ref();
    let rule = new
        .map(|n| {
            n.policies
                .iter()
                .zip(&n.reasons)
                .map(|(p, r)| format!("[{p}] {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let arrow = match d.change {
        Change::AllowToDeny | Change::DenyToAllow => format!(
            "{} -> {}",
            verdict(d.old.allowed),
            verdict(new.is_some_and(|n| n.allowed))
        ),
        _ => String::new(),
    };
    format!(
        "FLIP {} {} tenant={} user={} {} {} dest={} class={} {arrow} {rule}",
        rec.ts,
        rec.instance,
        rec.tenant,
        rec.user,
        rec.operation,
        rec.object,
        rec.destination,
        rec.classification
    )
}

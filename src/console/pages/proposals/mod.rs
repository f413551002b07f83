//! The proposal pages: list, new-proposal form, create, show (with its review), approve,
//! reject. The rules live in `console::proposals`; these modules read the request and render.

pub mod create;
pub mod decide;
pub mod list;
mod multipart;
pub mod new;
mod review_view;
pub mod show;

use std::collections::BTreeMap;

use crate::console::proposals::ProposalStore;
use crate::console::{ConsoleError, Ctx, Reply};
use crate::policy::PolicyBundle;

/// Answers every path under `/console/proposals`.
pub async fn route(ctx: &Ctx<'_>, get: bool) -> Result<Reply, ConsoleError> {
    let rest = ctx.path.strip_prefix("/console/proposals").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (get, parts.as_slice()) {
        (true, []) => list::get(ctx),
        (false, []) => create::post(ctx).await,
        (true, ["new"]) => new::get(ctx),
        (true, [id]) => show::get(ctx, id).await,
        (false, [id, "approve"]) => decide::approve(ctx, id),
        (false, [id, "reject"]) => decide::reject(ctx, id),
        _ => Err(ConsoleError::NotFound(format!(
            "no console page at {} for {}",
            ctx.path, ctx.method
        ))),
    }
}

fn store(ctx: &Ctx<'_>) -> ProposalStore {
    ProposalStore::new(ctx.console.config().proposals_dir.clone())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The policy directory's bundle files, which must be the bundle in force: a proposal is made
/// against what is in force, and on disk, or it could never be approved.
fn base_files(ctx: &Ctx<'_>) -> Result<BTreeMap<String, String>, ConsoleError> {
    let dir = ctx.console.policy_dir().ok_or_else(|| {
        ConsoleError::Conflict(
            "the gateway runs the embedded policy; set [policy] dir to propose changes".into(),
        )
    })?;
    let files = PolicyBundle::read_sources(dir)
        .map_err(|e| ConsoleError::Internal(format!("the policy directory cannot be read: {e}")))?;
    let on_disk = PolicyBundle::hash_sources(&files);
    let in_force = ctx.console.gateway().policy().hash().to_string();
    if on_disk != in_force {
        return Err(ConsoleError::Conflict(format!(
            "the policy directory holds bundle {on_disk} but {in_force} is in force (a reload was refused, or is under way); fix the directory or wait, then propose"
        )));
    }
    Ok(files)
}

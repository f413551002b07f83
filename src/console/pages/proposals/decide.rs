//! `POST /console/proposals/{id}/approve` and `…/reject`: the officer's decision, then back to
//! the proposal. The rules (four-eyes, stale base, audit first) are in `proposals::decide`.
//! An approval writes a few small files and reloads the bundle (milliseconds), so it runs on
//! the request's task; it never waits for a lock (a concurrent decision is a 409).

use crate::console::proposals::decide::{self, Target};
use crate::console::{ConsoleError, Ctx, Reply};

pub fn approve(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ConsoleError> {
    let store = super::store(ctx);
    let gateway = ctx.console.gateway();
    let target = Target {
        store: &store,
        policy: gateway.policy_store(),
        policy_dir: ctx.console.policy_dir(),
    };
    let comment = ctx.form.get("comment").unwrap_or("").trim();
    decide::approve(&target, id, ctx.officer, comment, super::now_ms(), &|act| {
        ctx.record(act)
    })?;
    Ok(Reply::SeeOther(format!("/console/proposals/{id}")))
}

pub fn reject(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ConsoleError> {
    let store = super::store(ctx);
    let comment = ctx.form.get("comment").unwrap_or("").trim();
    decide::reject(&store, id, ctx.officer, comment, super::now_ms(), &|act| {
        ctx.record(act)
    })?;
    Ok(Reply::SeeOther(format!("/console/proposals/{id}")))
}

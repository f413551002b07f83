//! `/console/proposals`: every proposal, newest first, with its status.

use maud::html;

use crate::config::OfficerRole;
use crate::console::proposals::Proposal;
use crate::console::{ConsoleError, Ctx, Reply};

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let metas = super::store(ctx).list()?;
    let in_force = ctx.console.gateway().policy().hash().to_string();
    Ok(Reply::page(
        "Proposals",
        html! {
            h1 { "Policy change proposals" }
            p { "Bundle in force: " code #bundle-hash { (in_force) } }
            @if ctx.officer.has(OfficerRole::Editor) {
                p { a #new-proposal href="/console/proposals/new" { "Propose a change" } }
            }
            table #proposals {
                thead { tr { th { "Created" } th { "Summary" } th { "Proposer" } th { "Status" } th { "Decided by" } } }
                tbody {
                    @for m in &metas {
                        @let status = Proposal { meta: m.clone(), files: Default::default() }.status(&in_force);
                        tr {
                            td { (m.created) }
                            td { a href={ "/console/proposals/" (m.id) } { (m.summary) } }
                            td { (m.proposer) }
                            td class=(status_class(status)) { (status) }
                            td { @if let Some(d) = &m.decided { (d.officer) " at " (d.at) } }
                        }
                    }
                }
            }
            @if metas.is_empty() { p.muted { "No proposals yet." } }
        },
    ))
}

pub(super) fn status_class(status: &str) -> &'static str {
    match status {
        "approved" => "ok",
        "rejected" => "muted",
        "stale" => "warn",
        _ => "",
    }
}

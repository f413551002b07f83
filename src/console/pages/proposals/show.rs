//! `/console/proposals/{id}`: the proposal, its review (check, tests, diff, replay; see
//! `review_view`), and the approve / reject forms for those allowed to decide.

use maud::{Markup, html};

use super::review_view;
use crate::config::OfficerRole;
use crate::console::proposals::review::{self, Inputs};
use crate::console::proposals::{Proposal, State};
use crate::console::{ConsoleError, Ctx, Reply, page};
use crate::policy::PolicyBundle;

pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ConsoleError> {
    let p = super::store(ctx).get(id)?;
    let in_force = ctx.console.gateway().policy();
    let inputs = Inputs {
        files: p.files.clone(),
        in_force: in_force.clone(),
        audit_files: ctx.console.audit_files(),
        replay_days: ctx.console.config().replay_days,
        now_ms: super::now_ms(),
    };
    let review = tokio::task::spawn_blocking(move || review::review(&inputs))
        .await
        .map_err(|e| ConsoleError::Internal(format!("the review could not be computed: {e}")))?;
    let status = p.status(in_force.hash());
    let changed = changed_files(ctx, &p);
    Ok(Reply::page(
        format!("Proposal {}", p.meta.id),
        html! {
            h1 { "Proposal: " (p.meta.summary) }
            (header(&p, status, in_force.hash()))
            (changed)
            (review_view::render(&review))
            (forms(ctx, &p, status, review.passes()))
        },
    ))
}

fn header(p: &Proposal, status: &str, in_force: &str) -> Markup {
    let m = &p.meta;
    html! {
        table #meta {
            tr { th { "Status" } td #status class=(super::list::status_class(status)) { (status) } }
            tr { th { "Proposed by" } td { (m.proposer) " " code.muted { (m.proposer_certificate) } } }
            tr { th { "Created" } td { (m.created) } }
            tr { th { "Made against" } td { code #base { (m.base) } } }
            tr { th { "Proposed bundle" } td { code #proposal-hash { (m.hash) } } }
            tr { th { "In force now" } td { code { (in_force) } } }
            @if let Some(d) = &m.decided {
                tr { th { "Decided" } td #decided { (m.state.as_str()) " by " (d.officer) " at " (d.at) } }
                tr { th { "Comment" } td #comment { (d.comment) } }
            }
        }
        @if status == "stale" {
            p.warn { "The bundle in force is no longer the one this proposal was made against, so it cannot be approved; propose the change again." }
        }
    }
}

/// Which files the proposal adds, changes or removes, compared with the policy directory now.
fn changed_files(ctx: &Ctx<'_>, p: &Proposal) -> Markup {
    let Some(now) = ctx
        .console
        .policy_dir()
        .and_then(|d| PolicyBundle::read_sources(d).ok())
    else {
        return html! {};
    };
    let names: std::collections::BTreeSet<&String> = now.keys().chain(p.files.keys()).collect();
    html! {
        h2 { "Files" }
        ul #files {
            @for n in names {
                @match (now.get(n), p.files.get(n)) {
                    (None, Some(_)) => li { (n) " " span.allow { "added" } },
                    (Some(_), None) => li { (n) " " span.deny { "removed" } },
                    (Some(a), Some(b)) if a != b => li { (n) " " span.flag { "changed" } },
                    _ => {},
                }
            }
        }
    }
}

fn forms(ctx: &Ctx<'_>, p: &Proposal, status: &str, passes: bool) -> Markup {
    let o = ctx.officer;
    let proposer = p.proposed_by(&o.name, &o.fingerprint);
    let open = p.meta.state == State::Open;
    let id = &p.meta.id;
    html! {
        @if open && status == "open" && o.has(OfficerRole::Approver) && !proposer {
            @if !passes { p.error { "The proposed bundle does not pass check and tests, so it cannot be approved." } }
            form #approve method="post" action={ "/console/proposals/" (id) "/approve" } {
                (page::csrf_field(ctx))
                p { label for="approve-comment" { "Comment" } br; textarea #approve-comment name="comment" rows="3" cols="80" {} }
                button #approve-button type="submit" { "Approve and put in force" }
            }
        }
        @if open && proposer && o.has(OfficerRole::Approver) {
            p.muted { "You proposed this change, so another approver must approve it (four-eyes)." }
        }
        @if open && (o.has(OfficerRole::Approver) || proposer) {
            form #reject method="post" action={ "/console/proposals/" (id) "/reject" } {
                (page::csrf_field(ctx))
                p { label for="reject-comment" { "Comment" } br; textarea #reject-comment name="comment" rows="3" cols="80" {} }
                button #reject-button type="submit" { @if proposer { "Withdraw" } @else { "Reject" } }
            }
        }
    }
}

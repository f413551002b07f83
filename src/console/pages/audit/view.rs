//! One flat view of every record type for the audit table and CSV: which tenant, who, where,
//! what came of it (`outcome`, what the search filters on) and a one-line detail.

use crate::audit::AuditEvent;

#[derive(Default)]
pub(super) struct View {
    pub kind: &'static str,
    pub tenant: String,
    pub users: Vec<String>,
    pub destination: String,
    pub object: String,
    pub outcome: String,
    pub detail: String,
}

fn accepted(yes: bool) -> String {
    if yes { "accepted" } else { "refused" }.into()
}

pub(super) fn view(e: &AuditEvent) -> View {
    use AuditEvent as E;
    match e {
        E::Decision {
            operation,
            tenant,
            user,
            destination,
            object,
            classification,
            allowed,
            policies,
            countries,
            ..
        } => View {
            kind: "decision",
            tenant: tenant.clone(),
            users: vec![user.clone()],
            destination: destination.clone(),
            object: object.clone(),
            outcome: if *allowed { "allowed" } else { "denied" }.into(),
            detail: format!(
                "{operation}, {classification}, countries [{}], rules [{}]",
                countries.join(" "),
                policies.join(", ")
            ),
        },
        E::Committed {
            tenant,
            user,
            destination,
            object,
            plaintext_size,
            policies,
            ..
        } => View {
            kind: "committed",
            tenant: tenant.clone(),
            users: vec![user.clone()],
            destination: destination.clone(),
            object: object.clone(),
            outcome: "committed".into(),
            detail: format!("{plaintext_size} bytes, rules [{}]", policies.join(", ")),
        },
        E::Aborted {
            tenant,
            user,
            destination,
            object,
            cause,
            ..
        } => View {
            kind: "aborted",
            tenant: tenant.clone(),
            users: vec![user.clone()],
            destination: destination.clone(),
            object: object.clone(),
            outcome: "aborted".into(),
            detail: cause.clone(),
        },
        E::Namespace {
            operation,
            tenant,
            user,
            destination,
            object,
            from,
            outcome,
            ..
        } => View {
            kind: "namespace",
            tenant: tenant.clone(),
            users: vec![user.clone()],
            destination: destination.clone(),
            object: object.clone(),
            outcome: if outcome == "done" { "done" } else { "failed" }.into(),
            detail: match from {
                Some(f) => format!("{operation} from {f}: {outcome}"),
                None => format!("{operation}: {outcome}"),
            },
        },
        other => view_other(other),
    }
}

/// The records that are not about one upload or entry.
fn view_other(e: &AuditEvent) -> View {
    use AuditEvent as E;
    match e {
        E::Auth {
            user,
            tenant,
            source,
            method,
            outcome,
            reason,
            ..
        } => View {
            kind: "auth",
            tenant: tenant.clone().unwrap_or_default(),
            users: vec![user.clone()],
            outcome: outcome.clone(),
            detail: format!("{method} from {source}{}", reason_text(reason)),
            ..View::default()
        },
        E::AuthSummary {
            source,
            outcome,
            attempts,
            first,
            last,
            users,
        } => View {
            kind: "auth_summary",
            users: users.clone(),
            outcome: outcome.clone(),
            detail: format!("{attempts} attempts from {source}, {first} to {last}"),
            ..View::default()
        },
        E::Console {
            officer,
            action,
            target,
            outcome,
            detail,
            ..
        } => View {
            kind: "console",
            users: vec![officer.clone()],
            object: target.clone(),
            outcome: outcome.clone(),
            detail: format!("{action}{}", if detail.is_empty() { "" } else { ": " }) + detail,
            ..View::default()
        },
        E::PolicyReload {
            accepted: yes,
            bundle,
            detail,
            ..
        } => View {
            kind: "policy_reload",
            outcome: accepted(*yes),
            detail: format!("bundle {bundle}: {detail}"),
            ..View::default()
        },
        E::KeyringReload {
            accepted: yes,
            version,
            detail,
            ..
        } => View {
            kind: "keyring_reload",
            outcome: accepted(*yes),
            detail: format!("keyring {version}: {detail}"),
            ..View::default()
        },
        E::Destination {
            destination,
            state,
            observed_region,
            detail,
        } => View {
            kind: "destination",
            destination: destination.clone(),
            outcome: state.clone(),
            detail: format!(
                "region {}: {detail}",
                observed_region.as_deref().unwrap_or("?")
            ),
            ..View::default()
        },
        E::Lifecycle { action, detail } => View {
            kind: "lifecycle",
            outcome: action.clone(),
            detail: detail.clone(),
            ..View::default()
        },
        E::Shutdown {
            running_at_signal,
            finished,
            aborted,
            ..
        } => View {
            kind: "shutdown",
            outcome: "done".into(),
            detail: format!(
                "{running_at_signal} uploads running: {finished} finished, {aborted} aborted"
            ),
            ..View::default()
        },
        // Handled by `view`; listed so a new record type is a compile error here.
        E::Decision { .. } | E::Committed { .. } | E::Aborted { .. } | E::Namespace { .. } => {
            view(e)
        }
    }
}

fn reason_text(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

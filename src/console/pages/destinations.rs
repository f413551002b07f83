//! `/console/destinations`: every configured destination with where the configuration says it
//! is, where the store says it is, the evidence, the verification state, the last probe and,
//! for a quarantined one, why.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use maud::{Markup, html};

use crate::console::{ConsoleError, Ctx, Reply};
use crate::storage::{Destination, Verification};

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let body = render(ctx.console.gateway().destinations());
    Ok(Reply::page("Destinations", body))
}

fn time_text(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    crate::audit::time::format_time(ms)
}

pub fn render(destinations: &[Arc<dyn Destination>]) -> Markup {
    html! {
        h1 { "Destinations" }
        p.muted {
            "A destination receives data only where the store itself reports the configured region (probed) "
            "or its operator declared the location (attested). Otherwise it is quarantined and every transfer to it is denied."
        }
        table #destinations {
            tr {
                th { "Name" } th { "Configured" } th { "Observed" } th { "Evidence" }
                th { "State" } th { "Last probe" } th { "Detail" }
            }
            @for d in destinations { (row(d.as_ref())) }
        }
        @if destinations.is_empty() { p.muted { "No destinations are configured." } }
    }
}

fn row(d: &dyn Destination) -> Markup {
    let v = d.verification();
    let (_, evidence) = d.location();
    let (observed, detail, state_class) = match &v {
        Verification::Declared => (None, "operator-declared location".to_string(), "ok"),
        Verification::Verified {
            observed_region,
            source,
        } => (Some(observed_region.clone()), format!("via {source}"), "ok"),
        Verification::Quarantined {
            reason,
            observed_region,
        } => (observed_region.clone(), reason.clone(), "deny"),
    };
    html! {
        tr data-destination=(d.name()) {
            td { (d.name()) }
            td { (d.configured_location()) }
            td { @match &observed { Some(o) => (o), None => span.muted { "(none reported)" } } }
            td { (evidence) }
            td class=(format!("state {state_class}")) { (v.state().as_str()) }
            td { @match d.last_probe() { Some(t) => (time_text(t)), None => span.muted { "not probed" } } }
            td { (detail) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsDestination;

    #[test]
    fn lists_each_destination_escaped() {
        let dir = tempfile::tempdir().expect("tmp");
        let d: Arc<dyn Destination> = Arc::new(
            FsDestination::open("<script>x</script>", &dir.path().join("a"), "DE").expect("fs"),
        );
        let html = render(&[d]).into_string();
        assert!(!html.contains("<script>x"), "{html}");
        assert!(
            html.contains("<td>&lt;script&gt;x&lt;/script&gt;</td>"),
            "{html}"
        );
        assert!(html.contains("<td>declared [DE]</td>"), "{html}");
        assert!(html.contains("<td>attested</td>"), "{html}");
        assert!(
            html.contains(r#"<td class="state ok">declared</td>"#),
            "{html}"
        );
        assert!(html.contains("not probed"), "{html}");
        assert_eq!(
            time_text(UNIX_EPOCH + std::time::Duration::from_millis(1_780_000_000_123)),
            "2026-05-28T20:26:40.123Z"
        );
    }
}

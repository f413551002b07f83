//! `/console/policies`: the bundle in force, readable: its hash, every rule with its effect,
//! reason and legal basis, the zones, the adequacy decisions with their dates (flagged when the
//! review date has passed), and each file's text.

use maud::{Markup, html};

use crate::console::{ConsoleError, Ctx, Reply};
use crate::policy::PolicyBundle;

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let bundle = ctx.console.gateway().policy();
    Ok(Reply::page("Policies", render(&bundle, &today())))
}

/// Today's date in UTC, `YYYY-MM-DD`.
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut t = crate::audit::time::format_time(now);
    t.truncate(10);
    t
}

/// `today` is `YYYY-MM-DD`: decisions whose `valid_until` lies before it are flagged.
pub fn render(bundle: &PolicyBundle, today: &str) -> Markup {
    html! {
        h1 { "Policies in force" }
        p { "Bundle " code #bundle-hash { (bundle.hash()) } }
        h2 { "Rules" }
        p.muted { "A forbid that matches always wins; a country no permit matches is denied (default-deny)." }
        table #rules {
            tr { th { "Rule" } th { "Effect" } th { "Reason" } th { "Legal basis" } th { "File" } }
            @for r in bundle.rules() {
                tr id=(format!("rule-{}", r.id)) {
                    td { code { (r.id) } }
                    td class=(if r.effect == "permit" { "allow" } else { "deny" }) { (r.effect) }
                    td { (r.reason.as_deref().unwrap_or("")) }
                    td { (r.legal_basis.as_deref().unwrap_or("")) }
                    td.muted { (r.file) ":" (r.line) }
                }
            }
        }
        h2 { "Zones" }
        table #zones {
            tr { th { "Zone" } th { "Name" } th { "Countries" } }
            @for (id, name, members) in bundle.zone_members() {
                tr { td { code { (id) } } td { (name) } td { (members.join(", ")) } }
            }
        }
        h2 { "Adequacy decisions (GDPR Art. 45)" }
        p.muted { "Today is " (today) ". A decision past its review date (valid until) is flagged: review it and update jurisdictions.toml." }
        table #adequacy {
            tr {
                th { "Country" } th { "Decision" } th { "Adopted" } th { "Renewed" }
                th { "Valid until" } th { "Scope" } th { "Note" }
            }
            @for d in bundle.adequacy_decisions() {
                tr {
                    td { (d.country) " " span.muted { (bundle.country_name(&d.country).unwrap_or("")) } }
                    td { (d.decision) }
                    td { (d.adopted) }
                    td { (d.renewed.as_deref().unwrap_or("")) }
                    @if d.review_overdue(today) {
                        td.flag { (d.valid_until.as_deref().unwrap_or("")) " – review overdue" }
                    } @else {
                        td { (d.valid_until.as_deref().unwrap_or("")) }
                    }
                    td { (d.scope.as_deref().unwrap_or("")) }
                    td { (d.note.as_deref().unwrap_or("")) }
                }
            }
        }
        h2 { "Files" }
        @for (name, text) in bundle.sources() {
            details {
                summary { code { (name) } " " span.muted { "(" (text.lines().count()) " lines)" } }
                pre { (text) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(file: &str, from: &str, to: &str) -> PolicyBundle {
        let mut s = PolicyBundle::embedded().sources().clone();
        if let Some(t) = s.get_mut(file) {
            assert!(t.contains(from), "{from} not in {file}");
            *t = t.replace(from, to);
        }
        PolicyBundle::from_sources(s).expect("valid")
    }

    #[test]
    fn shows_rules_with_annotations_and_hash() {
        let b = PolicyBundle::embedded();
        let html = render(&b, "2026-12-03").into_string();
        assert!(html.contains(&format!(r#"<code id="bundle-hash">{}</code>"#, b.hash())));
        for r in b.rules() {
            assert!(
                html.contains(&format!(r#"<tr id="rule-{}">"#, r.id)),
                "{}",
                r.id
            );
        }
        assert!(html.contains(r#"<td class="deny">forbid</td>"#));
        assert!(html.contains("GDPR Art. 45: the Commission decided"));
        assert!(html.contains("<summary><code>default.cedar</code>"));
    }

    #[test]
    fn flags_decisions_past_review_date_only() {
        let b = PolicyBundle::embedded();
        // GB is valid until 2031-12-27; no other shipped decision has a review date.
        let html = render(&b, "2026-12-03").into_string();
        assert!(!html.contains("review overdue"), "nothing overdue yet");
        let html = render(&b, "2032-01-01").into_string();
        assert_eq!(html.matches(r#"<td class="flag">"#).count(), 1);
        assert!(html.contains(r#"<td class="flag">2031-12-27 – review overdue</td>"#));
    }

    #[test]
    fn hostile_annotations_and_sources_render_as_text() {
        let b = with(
            "default.cedar",
            "@reason(\"The destination country is in the EEA",
            "@reason(\"<script>alert(1)</script> The destination country is in the EEA",
        );
        let html = render(&b, "2026-12-03").into_string();
        assert!(!html.contains("<script>alert"), "escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; The destination"));
    }
}

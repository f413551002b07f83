//! `/console/explain`: the `eugate policy explain` form and its answer. A configured destination
//! is decided as the gateway decides it (verified location, quarantine); a catalogue region or a
//! list of declared countries as `policy explain` decides it, with the same request.

use std::collections::BTreeSet;
use std::sync::Arc;

use maud::{Markup, html};

use crate::console::{ConsoleError, Ctx, Params, Reply};
use crate::policy::explain::{self, ExplainError};
use crate::policy::{Classification, Day, Decision, Evidence, PolicyBundle, Request};
use crate::storage::Destination;

/// The user `policy explain` asks for by default, so both give the same answer.
const USER: &str = "policy-explain";

/// What the officer typed, kept to fill the form again.
#[derive(Debug, Default, Clone)]
pub struct Input {
    pub tenant: String,
    pub destination: String,
    pub countries: String,
    pub evidence: String,
    pub classification: String,
    /// A self-hosted store's operator country (with declared countries).
    pub operator_country: String,
    /// Decide as of this day (`YYYY-MM-DD`); empty = today.
    pub at: String,
}

impl Input {
    pub fn from_query(q: &Params) -> Input {
        let field = |n: &str| q.non_empty(n).unwrap_or("").to_string();
        Input {
            tenant: field("tenant"),
            destination: field("destination"),
            countries: field("countries"),
            evidence: field("evidence"),
            classification: field("classification"),
            operator_country: field("operator_country"),
            at: field("at"),
        }
    }

    fn is_empty(&self) -> bool {
        self.tenant.is_empty() && self.destination.is_empty() && self.countries.is_empty()
    }
}

/// A decision and what it was about.
pub struct Answer {
    pub decision: Decision,
    /// Set when a configured destination was decided on its verified location.
    pub configured: bool,
}

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let gateway = ctx.console.gateway();
    let bundle = gateway.policy();
    let input = Input::from_query(&ctx.query);
    let configured = gateway.destinations();
    if input.is_empty() {
        return Ok(Reply::page(
            "Explain",
            render(&bundle, configured, &input, None),
        ));
    }
    let held = gateway.tenants_holding_their_keys();
    match answer(&bundle, configured, &held, &input, gateway.today()) {
        Ok(a) => Ok(Reply::page(
            "Explain",
            render(&bundle, configured, &input, Some(Ok(&a))),
        )),
        Err(message) => Ok(Reply::Invalid {
            title: "Explain".into(),
            body: render(&bundle, configured, &input, Some(Err(&message))),
        }),
    }
}

/// Decides the officer's question, or says precisely which field is wrong. A tenant in `held`
/// holds its own key on this gateway, and is asked about as such.
pub fn answer(
    bundle: &PolicyBundle,
    configured: &[Arc<dyn Destination>],
    held: &BTreeSet<String>,
    input: &Input,
    today: Day,
) -> Result<Answer, String> {
    let key_held_by_tenant = held.contains(&input.tenant);
    let day = match non_empty(&input.at) {
        None => today,
        Some(s) => s.parse::<Day>().map_err(|e| format!("as of: {e}"))?,
    };
    if input.tenant.is_empty() {
        return Err("tenant: give the tenant whose upload is decided, e.g. acme".into());
    }
    let classification = explain::classification(non_empty(&input.classification))
        .map_err(|e| format!("classification: {e}"))?;
    if !input.destination.is_empty() && !input.countries.is_empty() {
        return Err(
            "give either a destination or declared countries, not both (countries are for a self-hosted store)"
                .into(),
        );
    }
    if let Some(dest) = configured.iter().find(|d| d.name() == input.destination) {
        let decision = crate::transfer::preview(
            bundle,
            dest.as_ref(),
            &input.tenant,
            USER,
            classification,
            key_held_by_tenant,
            day,
        );
        return Ok(Answer {
            decision,
            configured: true,
        });
    }
    let evidence: Evidence = non_empty(&input.evidence)
        .unwrap_or("probed")
        .parse()
        .map_err(|e| format!("evidence: {e}"))?;
    let declared: Option<Vec<String>> = (!input.countries.is_empty()).then(|| {
        input
            .countries
            .split(',')
            .map(|c| c.trim().to_string())
            .collect()
    });
    let (location, destination) =
        explain::location(non_empty(&input.destination), declared.as_deref())
            .and_then(|(l, d)| explain::check_known(bundle, &l).map(|()| (l, d)))
            .map_err(|e| field_error(&e))?;
    let req = Request {
        tenant: input.tenant.clone(),
        user: USER.into(),
        classification,
        destination,
        location,
        evidence,
        key_held_by_tenant,
        operator_country: non_empty(&input.operator_country).map(str::to_string),
    };
    Ok(Answer {
        decision: bundle.decide_at(&req, day).0,
        configured: false,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn field_error(e: &ExplainError) -> String {
    match e {
        ExplainError::NotARegion(_) => format!(
            "destination: {e}, or the name of a configured destination"
        ),
        ExplainError::UnknownRegion(_) => format!("destination: {e}"),
        ExplainError::UnknownCountry(_) | ExplainError::NoCountry => format!("countries: {e}"),
        ExplainError::NoDestination => {
            "destination: give a configured destination, a catalogue region (provider:region) or declared countries"
                .into()
        }
        ExplainError::Word(_) => e.to_string(),
    }
}

pub fn render(
    bundle: &PolicyBundle,
    configured: &[Arc<dyn Destination>],
    input: &Input,
    result: Option<Result<&Answer, &String>>,
) -> Markup {
    html! {
        h1 { "Explain a decision" }
        (form(bundle, configured, input))
        @match result {
            None => {}
            Some(Err(message)) => p.error #error { (message) },
            Some(Ok(a)) => (decision(bundle, a)),
        }
    }
}

fn form(bundle: &PolicyBundle, configured: &[Arc<dyn Destination>], input: &Input) -> Markup {
    let evidences = [Evidence::Probed, Evidence::Attested, Evidence::Unverified];
    html! {
        form.inline #explain method="get" action="/console/explain" {
            label { "Tenant" input name="tenant" list="tenants" value=(input.tenant) required; }
            datalist #tenants { @for t in bundle.tenants() { option value=(t) {} } }
            label {
                "Destination (configured, or provider:region)"
                input name="destination" list="destinations" value=(input.destination);
            }
            datalist #destinations {
                @for d in configured { option value=(d.name()) { "configured" } }
                @for r in bundle.destinations() { option value=(r) {} }
            }
            label { "or declared countries" input name="countries" placeholder="DE,FR" value=(input.countries); }
            label { "operated from" input name="operator_country" placeholder="DE" size="4" value=(input.operator_country); }
            label {
                "Evidence"
                select name="evidence" {
                    option value="" { "probed (configured: as verified)" }
                    @for e in evidences {
                        option value=(e.as_str()) selected[input.evidence == e.as_str()] { (e.as_str()) }
                    }
                }
            }
            label {
                "Classification"
                select name="classification" {
                    option value="" { "unclassified" }
                    @for c in Classification::ALL {
                        option value=(c.as_str()) selected[input.classification == c.as_str()] { (c.as_str()) }
                    }
                }
            }
            label { "As of" input name="at" placeholder="today (YYYY-MM-DD)" value=(input.at); }
            button type="submit" { "Explain" }
        }
    }
}

fn decision(bundle: &PolicyBundle, a: &Answer) -> Markup {
    let d = &a.decision;
    html! {
        section #decision {
            h2 {
                "Decision: "
                @if d.allowed { span.allow { "ALLOW" } } @else { span.deny { "DENY" } }
            }
            table.inputs {
                tr { th { "Tenant" } td { (d.tenant) } }
                tr { th { "Classification" } td { (explain::classification_text(d)) } }
                tr { th { "Destination" } td { (d.destination) } }
                tr {
                    th { "Location" }
                    td {
                        (d.location)
                        @if a.configured { " " span.muted { "(as the destination verified it)" } }
                    }
                }
                tr { th { "Evidence" } td { (d.evidence) } }
                tr {
                    th { "Countries" }
                    td #countries {
                        @if d.countries.is_empty() { "unknown" } @else { (d.countries.join(", ")) }
                    }
                }
                tr {
                    th { "Zones" }
                    td #zones { @if d.zones.is_empty() { "none" } @else { (d.zones.join(", ")) } }
                }
                tr { th { "As of" } td #as-of { (d.as_of) } }
            }
            h2 { "Jurisdictions" }
            table #jurisdictions {
                tr { th { "Role" } th { "Country" } th { "Zones" } th { "Company" } th { "Reference" } }
                @for j in &d.jurisdictions {
                    tr {
                        td { (j.role) }
                        td { (j.country) }
                        td { @if j.zones.is_empty() { "none" } @else { (j.zones.join(", ")) } }
                        td { (j.entity) }
                        td.muted { (j.reference) }
                    }
                }
            }
            @for l in &d.lapsed { p.warn.lapsed { "Not counted as of " (d.as_of) ": " (l) } }
            h2 { "Because" }
            (rules(bundle, d))
            @if d.per_country.len() > 1 {
                h2 { "Every country must pass" }
                table #per-country {
                    tr { th { "Country" } th { "Decision" } th { "Rules" } }
                    @for o in &d.per_country {
                        tr {
                            td { (o.country) }
                            @if o.allowed { td.allow { "allow" } } @else { td.deny { "deny" } }
                            td { (o.policies.join(", ")) }
                        }
                    }
                }
            }
            @for n in &d.notes { p.warn { "Note: " (n) } }
            p #bundle { "Policy bundle " code { (d.bundle_hash) } }
        }
    }
}

/// Each deciding rule with its reason and legal basis as annotated; rules that are not in the
/// bundle (default deny, quarantine) with the engine's reason.
fn rules(bundle: &PolicyBundle, d: &Decision) -> Markup {
    html! {
        table #rules {
            tr { th { "Rule" } th { "Effect" } th { "Reason" } th { "Legal basis" } }
            @for (id, reason) in d.policies.iter().zip(&d.reasons) {
                @let rule = bundle.rules().iter().find(|r| &r.id == id);
                tr {
                    td { code { (id) } }
                    td { (rule.map(|r| r.effect).unwrap_or("deny")) }
                    @match rule {
                        Some(r) => {
                            td { (r.reason.as_deref().unwrap_or("")) }
                            td { (r.legal_basis.as_deref().unwrap_or("")) }
                        }
                        None => { td { (reason) } td {} }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(tenant: &str, destination: &str, countries: &str, class: &str) -> Input {
        Input {
            tenant: tenant.into(),
            destination: destination.into(),
            countries: countries.into(),
            evidence: String::new(),
            classification: class.into(),
            operator_country: String::new(),
            at: String::new(),
        }
    }

    fn page(bundle: &PolicyBundle, i: &Input) -> (Result<(), String>, String) {
        match answer(bundle, &[], &BTreeSet::new(), i, Day::today_utc()) {
            Ok(a) => (Ok(()), render(bundle, &[], i, Some(Ok(&a))).into_string()),
            Err(m) => (
                Err(m.clone()),
                render(bundle, &[], i, Some(Err(&m))).into_string(),
            ),
        }
    }

    #[test]
    fn answers_like_policy_explain() {
        let b = PolicyBundle::embedded();
        let (r, html) = page(&b, &input("t", "aws:eu-central-1", "", "personal"));
        assert_eq!(r, Ok(()));
        assert!(
            html.contains(r#"<span class="allow">ALLOW</span>"#),
            "{html}"
        );
        assert!(html.contains("<code>eea</code>"), "{html}");
        assert!(html.contains(b.hash()), "{html}");
        let (_, html) = page(&b, &input("t", "aws:cn-north-1", "", "public"));
        assert!(html.contains(r#"<span class="deny">DENY</span>"#), "{html}");
        assert!(html.contains("default-deny") && html.contains("CN (in no zone)"));
        let (_, html) = page(&b, &input("t", "", "de, GB", "special-category"));
        assert!(html.contains("special-category-eea-only"), "{html}");
        assert!(html.contains(r#"id="per-country""#), "{html}");
    }

    #[test]
    fn names_the_jurisdictions_and_decides_as_of_the_day_asked() {
        let b = PolicyBundle::embedded();
        let mut i = input("t", "wasabi:eu-west-1", "", "personal");
        i.at = "2032-01-01".into();
        let (r, html) = page(&b, &i);
        assert_eq!(r, Ok(()));
        assert!(html.contains(r#"<span class="deny">DENY</span>"#), "{html}");
        assert!(html.contains(r#"<td id="as-of">2032-01-01</td>"#), "{html}");
        assert!(
            html.contains("Not counted as of 2032-01-01: GB's adequacy decision (EU) 2021/1772"),
            "{html}"
        );
        i.at = "2030-01-01".into();
        assert!(
            page(&b, &i)
                .1
                .contains(r#"<span class="allow">ALLOW</span>"#)
        );
        let (_, html) = page(
            &b,
            &input("t", "alibaba-oss:oss-eu-central-1", "", "personal"),
        );
        assert!(html.contains(r#"<table id="jurisdictions">"#), "{html}");
        assert!(
            html.contains("<td>provider</td><td>CN</td><td>none</td>"),
            "{html}"
        );
        let mut run_from_cn = input("t", "", "DE", "personal");
        run_from_cn.operator_country = "CN".into();
        assert!(page(&b, &run_from_cn).1.contains("provider-jurisdiction"));
        i.at = "2032-02-30".into();
        assert_eq!(
            page(&b, &i).0,
            Err("as of: '2032-02-30' is not a date: write YYYY-MM-DD (e.g. 2031-12-27)".into())
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let b = PolicyBundle::embedded();
        let err = |i: Input| {
            answer(&b, &[], &BTreeSet::new(), &i, Day::today_utc())
                .err()
                .unwrap_or_default()
        };
        assert!(
            err(input("t", "aws:eu-central-1", "", "secret"))
                .starts_with("classification: unknown classification 'secret'")
        );
        assert!(
            err(input("t", "aws:mars-1", "", ""))
                .starts_with("destination: region 'aws:mars-1' is not in the catalogue")
        );
        assert!(
            err(input("t", "frankfurt", "", ""))
                .starts_with("destination: destination 'frankfurt' must be PROVIDER:REGION")
        );
        assert!(err(input("t", "", "DE,XX", "")).starts_with("countries: country 'XX'"));
        assert!(err(input("", "aws:eu-central-1", "", "")).starts_with("tenant:"));
        assert!(err(input("t", "aws:eu-central-1", "DE", "")).contains("not both"));
        let mut i = input("t", "aws:eu-central-1", "", "");
        i.evidence = "hearsay".into();
        assert!(err(i).starts_with("evidence: unknown evidence 'hearsay'"));
    }

    #[test]
    fn hostile_input_is_escaped_in_form_and_error() {
        let b = PolicyBundle::embedded();
        let (r, html) = page(&b, &input("<script>x</script>", "<b>:x", "", ""));
        assert!(r.is_err());
        assert!(
            !html.contains("<script>x") && !html.contains("<b>:x"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(html.contains(r#"id="error""#), "{html}");
        let (r, html) = page(&b, &input("<i>t", "aws:eu-central-1", "", ""));
        assert_eq!(r, Ok(()));
        assert!(
            !html.contains("<i>t") && html.contains("&lt;i&gt;t"),
            "{html}"
        );
    }
}

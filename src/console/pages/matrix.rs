//! `/console/matrix`: every tenant × classification × destination, allowed or denied under the
//! bundle in force. Destinations are the configured ones, decided as the gateway decides them
//! (verified location, quarantine), then every catalogue region, decided as `policy diff`
//! decides it (probed). One table, one group of rows per classification, one column per tenant.

use std::collections::BTreeSet;
use std::sync::Arc;

use maud::{Markup, html};

use crate::console::{ConsoleError, Ctx, Reply};
use crate::policy::diff::{self, catalogue_request};
use crate::policy::{Classification, Day, Decision, PolicyBundle};
use crate::storage::Destination;

/// The user the matrix asks for, as `policy diff` does.
const USER: &str = "policy-matrix";

/// The filters of the GET form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `None` = every classification; `Some(None)` = unclassified only.
    pub classification: Option<Option<Classification>>,
    pub tenant: Option<String>,
}

impl Filter {
    pub fn parse(classification: Option<&str>, tenant: Option<&str>) -> Result<Filter, String> {
        let classification = match classification {
            None => None,
            Some(word) => Some(
                crate::policy::explain::classification(Some(word))
                    .map_err(|e| format!("classification: {e}, or unclassified"))?,
            ),
        };
        Ok(Filter {
            classification,
            tenant: tenant.map(str::to_string),
        })
    }
}

/// One row: a destination and its decision for each tenant.
pub struct Row {
    pub label: String,
    pub location: String,
    /// What the explain page's `destination` field takes for it.
    pub destination: String,
    pub configured: bool,
    pub cells: Vec<Decision>,
}

pub struct Group {
    pub classification: Option<Classification>,
    pub rows: Vec<Row>,
}

pub struct Matrix {
    pub tenants: Vec<String>,
    pub groups: Vec<Group>,
}

pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let filter = Filter::parse(
        ctx.query.non_empty("classification"),
        ctx.query.non_empty("tenant"),
    )
    .map_err(ConsoleError::BadRequest)?;
    let bundle = ctx.console.gateway().policy();
    let configured = ctx.console.gateway().destinations().to_vec();
    let held = ctx.console.gateway().tenants_holding_their_keys();
    let today = ctx.console.gateway().today();
    // A few thousand decisions: off the reactor.
    let body = tokio::task::spawn_blocking(move || {
        let m = build(&bundle, &configured, &held, &filter, today);
        render(&bundle, &m, &filter)
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("the matrix could not be computed: {e}")))?;
    Ok(Reply::page("Residency matrix", body))
}

/// Every tenant × destination decision; tenants in `held` hold their own key on this gateway.
pub fn build(
    bundle: &PolicyBundle,
    configured: &[Arc<dyn Destination>],
    held: &BTreeSet<String>,
    filter: &Filter,
    today: Day,
) -> Matrix {
    let tenants = match &filter.tenant {
        Some(t) => vec![t.clone()],
        None => diff::tenants(&[bundle]),
    };
    let classes = match filter.classification {
        Some(c) => vec![c],
        None => diff::classifications(),
    };
    let groups = classes
        .into_iter()
        .map(|class| {
            let mut rows: Vec<Row> = configured
                .iter()
                .map(|d| Row {
                    label: d.name().to_string(),
                    location: format!("{} ({})", d.location().0, d.verification().state().as_str()),
                    destination: d.name().to_string(),
                    configured: true,
                    cells: tenants
                        .iter()
                        .map(|t| {
                            let own_key = held.contains(t);
                            crate::transfer::preview(
                                bundle,
                                d.as_ref(),
                                t,
                                USER,
                                class,
                                own_key,
                                today,
                            )
                        })
                        .collect(),
                })
                .collect();
            rows.extend(bundle.destinations().map(|region| {
                Row {
                    label: region.to_string(),
                    location: "catalogue".into(),
                    destination: region.to_string(),
                    configured: false,
                    cells: tenants
                        .iter()
                        .map(|t| {
                            let mut req = catalogue_request(region, class, t, USER);
                            req.key_held_by_tenant = held.contains(t);
                            bundle.decide_at(&req, today).0
                        })
                        .collect(),
                }
            }));
            Group {
                classification: class,
                rows,
            }
        })
        .collect();
    Matrix { tenants, groups }
}

fn class_word(c: Option<Classification>) -> &'static str {
    c.map(Classification::as_str).unwrap_or("unclassified")
}

/// The explain page with this cell's question filled in.
fn explain_link(tenant: &str, destination: &str, class: Option<Classification>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("tenant", tenant);
    q.append_pair("destination", destination);
    if let Some(c) = class {
        q.append_pair("classification", c.as_str());
    }
    format!("/console/explain?{}", q.finish())
}

/// "rule: reason" for each deciding rule, one per line (the cell's tooltip).
fn why(d: &Decision) -> String {
    d.policies
        .iter()
        .zip(&d.reasons)
        .map(|(p, r)| format!("{p}: {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render(bundle: &PolicyBundle, m: &Matrix, filter: &Filter) -> Markup {
    let selected = |c: Option<Classification>| filter.classification == Some(c);
    html! {
        h1 { "Residency matrix" }
        p.muted {
            "Each cell: may this tenant's data of this classification be stored at this destination, under the policy bundle "
            code { (bundle.hash()) } ". Hover for the deciding rules; click for the full explanation."
        }
        form.inline #matrix-filter method="get" action="/console/matrix" {
            label {
                "Classification"
                select name="classification" {
                    option value="" selected[filter.classification.is_none()] { "all" }
                    @for c in diff::classifications() {
                        option value=(class_word(c)) selected[selected(c)] { (class_word(c)) }
                    }
                }
            }
            label {
                "Tenant"
                input name="tenant" list="tenants" placeholder="all" value=(filter.tenant.as_deref().unwrap_or(""));
            }
            datalist #tenants { @for t in bundle.tenants() { option value=(t) {} } }
            button type="submit" { "Show" }
        }
        table #matrix {
            thead {
                tr {
                    th { "Destination" }
                    th { "Location" }
                    @for t in &m.tenants { th.tenant { (t) } }
                }
            }
            @for g in &m.groups {
                tbody data-classification=(class_word(g.classification)) {
                    tr.group {
                        th colspan=(m.tenants.len() + 2) {
                            "Classification: " (class_word(g.classification))
                            @if g.classification.is_none() { span.muted { " (treated as special-category)" } }
                        }
                    }
                    @for r in &g.rows {
                        tr {
                            th {
                                (r.label)
                                @if r.configured { " " span.muted { "(configured)" } }
                            }
                            td.muted { (r.location) }
                            @for (t, d) in m.tenants.iter().zip(&r.cells) {
                                td class=(d.verdict()) title=(why(d)) {
                                    a href=(explain_link(t, &r.destination, g.classification)) { (d.verdict()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsDestination;

    fn matrix(configured: &[Arc<dyn Destination>], filter: &Filter) -> String {
        let b = PolicyBundle::embedded();
        render(
            &b,
            &build(&b, configured, &BTreeSet::new(), filter, Day::today_utc()),
            filter,
        )
        .into_string()
    }

    fn cell_for(html: &str, href_part: &str) -> String {
        // The cell is the `<td …>` just before the link that names the question.
        let at = html
            .find(href_part)
            .unwrap_or_else(|| panic!("no {href_part}"));
        let td = html[..at].rfind("<td ").unwrap_or(0);
        html[td..at].to_string()
    }

    #[test]
    fn shipped_policy_denies_us_and_cn_and_allows_eu() {
        let f = Filter::parse(Some("personal"), Some("globex")).expect("filter");
        let html = matrix(&[], &f);
        let eu = cell_for(&html, "destination=aws%3Aeu-central-1&amp;");
        assert!(eu.starts_with(r#"<td class="allow" title="eea: "#), "{eu}");
        let cn = cell_for(&html, "destination=aws%3Acn-north-1&amp;");
        assert!(
            cn.starts_with(r#"<td class="deny" title="provider-jurisdiction: "#),
            "{cn}"
        );
        // Stored in Germany by a provider run from China.
        let alibaba = cell_for(&html, "destination=alibaba-oss%3Aoss-eu-central-1&amp;");
        assert!(
            alibaba.starts_with(r#"<td class="deny" title="provider-jurisdiction: "#),
            "{alibaba}"
        );
        let us = cell_for(&html, "destination=aws%3Aus-east-1&amp;");
        assert!(us.starts_with(r#"<td class="deny""#), "{us}");
        assert!(html.contains(
            "/console/explain?tenant=globex&amp;destination=aws%3Aeu-central-1&amp;classification=personal"
        ));
        // Filtered: one classification, one tenant column.
        assert_eq!(html.matches("<tbody").count(), 1);
        assert_eq!(html.matches(r#"<th class="tenant">"#).count(), 1);
    }

    #[test]
    fn all_classifications_and_tenants_by_default() {
        let html = matrix(&[], &Filter::default());
        assert_eq!(html.matches("<tbody").count(), 5, "unclassified + 4");
        // acme, acme-health and any other tenant.
        assert_eq!(html.matches(r#"<th class="tenant">"#).count(), 3);
        // acme attested aws:us-east-1: personal data allowed there for acme only.
        let f = Filter::parse(Some("personal"), Some("acme")).expect("filter");
        let html = matrix(&[], &f);
        let us = cell_for(&html, "destination=aws%3Aus-east-1&amp;");
        assert!(
            us.contains(r#"class="allow" title="adequacy-scoped-attested: "#),
            "{us}"
        );
    }

    #[test]
    fn configured_destinations_come_first_and_decide_on_their_location() {
        let dir = tempfile::tempdir().expect("tmp");
        let us: Arc<dyn Destination> =
            Arc::new(FsDestination::open("<img src=x>", &dir.path().join("a"), "US").expect("fs"));
        let de: Arc<dyn Destination> =
            Arc::new(FsDestination::open("local-de", &dir.path().join("b"), "DE").expect("fs"));
        let f = Filter::parse(Some("public"), Some("t")).expect("filter");
        let html = matrix(&[us, de], &f);
        assert!(!html.contains("<img src=x>"), "names are escaped");
        assert!(html.contains("&lt;img src=x&gt;"));
        let de_cell = cell_for(&html, "destination=local-de&amp;");
        assert!(de_cell.starts_with(r#"<td class="allow""#), "{de_cell}");
        let us_cell = cell_for(&html, "destination=%3Cimg+src%3Dx%3E&amp;");
        assert!(us_cell.starts_with(r#"<td class="deny""#), "{us_cell}");
        assert!(html.find("local-de") < html.find("aws:af-south-1"));
    }

    #[test]
    fn bad_classification_filter_is_refused() {
        let e = Filter::parse(Some("secret"), None).expect_err("refused");
        assert!(
            e.starts_with("classification: unknown classification 'secret'"),
            "{e}"
        );
        assert_eq!(
            Filter::parse(Some("unclassified"), None).map(|f| f.classification),
            Ok(Some(None))
        );
    }

    #[test]
    fn hostile_tenant_filter_is_escaped() {
        let f = Filter::parse(None, Some("\"><script>alert(1)</script>")).expect("filter");
        let html = matrix(&[], &f);
        assert!(!html.contains("<script>alert"), "escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}

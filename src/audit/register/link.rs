//! Links each commit to the decision that allowed it, and sums commits per destination and
//! country set (the rules are in the module documentation, `register/mod.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Denial, Query, Rule, Total, Transfer};
use crate::audit::AuditEvent;
use crate::audit::records::Record;

/// Decisions kept per upload key: enough to find one from the commit's bundle across a reload.
const KEPT_PER_KEY: usize = 4;

/// What a commit needs from its decision.
#[derive(Debug, Clone)]
struct Allowed {
    seq: u64,
    bundle: String,
    classification: String,
    countries: Vec<String>,
    rules: Vec<Rule>,
}

type Key = (String, String, String, String);

/// Pairs policy ids with their reasons (the engine writes them in the same order).
fn rules(policies: &[String], reasons: &[String]) -> Vec<Rule> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| Rule {
            policy: p.clone(),
            reason: reasons.get(i).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Groups files by instance (a file's first named instance; unnamed files are one instance),
/// orders each group's files by their first timestamp, and walks every group's records in order.
pub(super) fn link(
    inputs: Vec<(String, Vec<Record>)>,
    query: &Query,
) -> (Vec<Transfer>, Vec<Denial>) {
    let mut groups: BTreeMap<Option<String>, Vec<(String, Vec<Record>)>> = BTreeMap::new();
    for (file, records) in inputs {
        let instance = records.iter().find_map(|r| r.instance.clone());
        groups.entry(instance).or_default().push((file, records));
    }
    let mut transfers = Vec::new();
    let mut denials = Vec::new();
    for files in groups.values_mut() {
        files.sort_by_key(|(_, r)| r.first().map(|r| r.at));
        let mut seen: HashMap<Key, Vec<Allowed>> = HashMap::new();
        for (file, records) in files.iter() {
            for r in records {
                walk(r, file, query, &mut seen, &mut transfers, &mut denials);
            }
        }
    }
    transfers.sort_by(|a, b| (&a.time, &a.file, a.seq).cmp(&(&b.time, &b.file, b.seq)));
    denials.sort_by(|a, b| (&a.time, &a.file, a.seq).cmp(&(&b.time, &b.file, b.seq)));
    (transfers, denials)
}

fn walk(
    r: &Record,
    file: &str,
    query: &Query,
    seen: &mut HashMap<Key, Vec<Allowed>>,
    transfers: &mut Vec<Transfer>,
    denials: &mut Vec<Denial>,
) {
    let wanted = |tenant: &str| query.tenant.as_deref().is_none_or(|t| t == tenant);
    match &r.event {
        AuditEvent::Decision {
            operation,
            tenant,
            user,
            destination,
            object,
            classification,
            allowed,
            policies,
            reasons,
            countries,
            evidence,
            bundle,
            protocol,
            ..
        } if wanted(tenant) => {
            if !allowed && query.period.contains(r.at) {
                denials.push(Denial {
                    time: r.ts.clone(),
                    tenant: tenant.clone(),
                    user: user.clone(),
                    operation: operation.clone(),
                    destination: destination.clone(),
                    countries: countries.clone(),
                    object: object.clone(),
                    classification: classification.clone(),
                    rules: rules(policies, reasons),
                    evidence: evidence.clone(),
                    bundle: bundle.clone(),
                    protocol: protocol.clone(),
                    instance: r.instance.clone(),
                    file: file.to_string(),
                    seq: r.seq,
                    verified: r.verified,
                });
            }
            // Decisions before the period still explain commits inside it.
            if *allowed && operation == "upload" && r.at < query.period.to {
                let key = (
                    tenant.clone(),
                    user.clone(),
                    destination.clone(),
                    object.clone(),
                );
                let kept = seen.entry(key).or_default();
                if kept.len() == KEPT_PER_KEY {
                    kept.remove(0);
                }
                kept.push(Allowed {
                    seq: r.seq,
                    bundle: bundle.clone(),
                    classification: classification.clone(),
                    countries: countries.clone(),
                    rules: rules(policies, reasons),
                });
            }
        }
        AuditEvent::Committed {
            tenant,
            user,
            destination,
            object,
            plaintext_size,
            ciphertext_size,
            policies,
            bundle,
            protocol,
            ..
        } if wanted(tenant) && query.period.contains(r.at) => {
            let key = (
                tenant.clone(),
                user.clone(),
                destination.clone(),
                object.clone(),
            );
            let decision = seen.get(&key).and_then(|kept| {
                kept.iter()
                    .rev()
                    .find(|d| bundle.is_empty() || d.bundle == *bundle)
                    .or(kept.last())
            });
            transfers.push(Transfer {
                time: r.ts.clone(),
                tenant: tenant.clone(),
                user: user.clone(),
                destination: destination.clone(),
                countries: decision.map(|d| d.countries.clone()).unwrap_or_default(),
                object: object.clone(),
                classification: decision.map(|d| d.classification.clone()),
                plaintext_bytes: *plaintext_size,
                ciphertext_bytes: *ciphertext_size,
                rules: commit_rules(policies, decision),
                bundle: if bundle.is_empty() {
                    decision.map(|d| d.bundle.clone()).unwrap_or_default()
                } else {
                    bundle.clone()
                },
                protocol: protocol.clone(),
                instance: r.instance.clone(),
                file: file.to_string(),
                seq: r.seq,
                decision_seq: decision.map(|d| d.seq),
                verified: r.verified,
            });
        }
        _ => {}
    }
}

/// The commit's own policy ids when it has them (reasons looked up in the decision), else the
/// decision's rules.
fn commit_rules(policies: &[String], decision: Option<&Allowed>) -> Vec<Rule> {
    if policies.is_empty() {
        return decision.map(|d| d.rules.clone()).unwrap_or_default();
    }
    policies
        .iter()
        .map(|p| Rule {
            policy: p.clone(),
            reason: decision
                .and_then(|d| d.rules.iter().find(|r| r.policy == *p))
                .map(|r| r.reason.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// Sums transfers per tenant, destination and country set.
pub(super) fn totals(transfers: &[Transfer]) -> Vec<Total> {
    #[derive(Default)]
    struct Acc {
        transfers: u64,
        bytes: u64,
        classifications: BTreeSet<String>,
        rules: BTreeSet<Rule>,
        bundles: BTreeSet<String>,
        instances: BTreeSet<String>,
        unlinked: u64,
        unverified: bool,
    }
    let mut groups: BTreeMap<(String, String, Vec<String>), Acc> = BTreeMap::new();
    for t in transfers {
        let mut countries = t.countries.clone();
        countries.sort();
        let acc = groups
            .entry((t.tenant.clone(), t.destination.clone(), countries))
            .or_default();
        acc.transfers += 1;
        acc.bytes = acc.bytes.saturating_add(t.plaintext_bytes);
        acc.classifications.extend(t.classification.clone());
        acc.rules.extend(t.rules.iter().cloned());
        acc.bundles.insert(t.bundle.clone());
        acc.instances.extend(t.instance.clone());
        acc.unlinked += u64::from(t.decision_seq.is_none());
        acc.unverified |= !t.verified;
    }
    groups
        .into_iter()
        .map(|((tenant, destination, countries), a)| Total {
            tenant,
            destination,
            countries,
            transfers: a.transfers,
            plaintext_bytes: a.bytes,
            classifications: a.classifications.into_iter().collect(),
            rules: a.rules.into_iter().collect(),
            bundles: a.bundles.into_iter().filter(|b| !b.is_empty()).collect(),
            instances: a.instances.into_iter().collect(),
            unlinked: a.unlinked,
            verified: !a.unverified,
        })
        .collect()
}

//! Cedar rules: parse every `*.cedar` file, give each policy its `@id`, check annotations,
//! entity references and the schema, and keep file:line for every message.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use super::DEFAULT_DENY_ID;
use super::error::{Problem, line_of};
use super::facts::{Facts, REGIONS};

pub(crate) const SCHEMA: &str = "schema.cedarschema";

pub(crate) struct Rules {
    pub set: PolicySet,
    pub schema: Schema,
    /// Policy id → the human text (`@reason`, and/or `@legal_basis`).
    pub reasons: HashMap<String, String>,
    /// Every rule as written, in file and source order (for people reading the bundle).
    pub list: Vec<RuleInfo>,
}

/// One rule of the bundle, as its author annotated it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleInfo {
    pub id: String,
    /// "permit" or "forbid".
    pub effect: &'static str,
    pub reason: Option<String>,
    pub legal_basis: Option<String>,
    pub file: String,
    pub line: usize,
}

/// First byte offset of the first label of a diagnostic, if it has one.
fn diag_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn diag_message(d: &(dyn Diagnostic + Send + Sync)) -> String {
    match d.help() {
        Some(help) => format!("{d}; {help}"),
        None => d.to_string(),
    }
}

/// Byte ranges of the top-level statements (policies) of a Cedar file, in source order.
/// Cedar has `//` comments and `"..."` strings with `\` escapes; `;` ends a policy.
fn statement_ranges(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b';' => {
                if let Some(s) = start.take() {
                    out.push((s, i + 1));
                }
            }
            c if c.is_ascii_whitespace() => {}
            _ => {
                start.get_or_insert(i);
            }
        }
        i += 1;
    }
    out
}

struct Located {
    file: String,
    line: usize,
}

pub(crate) fn load(
    sources: &BTreeMap<String, String>,
    facts: &Facts,
    problems: &mut Vec<Problem>,
) -> Option<Rules> {
    let mut ok = true;
    let schema = match sources.get(SCHEMA) {
        None => {
            problems.push(Problem {
                file: SCHEMA.into(),
                line: 0,
                message: "missing: every policy directory needs the Cedar schema".into(),
            });
            None
        }
        Some(text) => match Schema::from_cedarschema_str(text) {
            Ok((schema, _warnings)) => Some(schema),
            Err(e) => {
                problems.push(Problem {
                    file: SCHEMA.into(),
                    line: diag_offset(&e).map(|o| line_of(text, o)).unwrap_or(0),
                    message: format!("schema error: {}", diag_message(&e)),
                });
                None
            }
        },
    };

    let mut set = PolicySet::new();
    let mut reasons = HashMap::new();
    let mut list = Vec::new();
    let mut located: HashMap<String, Located> = HashMap::new();
    let cedar_files: Vec<(&String, &String)> = sources
        .iter()
        .filter(|(name, _)| name.ends_with(".cedar") && !name.contains('/'))
        .collect();
    if cedar_files.is_empty() {
        problems.push(Problem {
            file: "*.cedar".into(),
            line: 0,
            message: "no rule files: add at least one *.cedar file with the rules".into(),
        });
        ok = false;
    }

    for (file, text) in cedar_files {
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(errs) => {
                for e in errs.iter() {
                    problems.push(Problem {
                        file: file.clone(),
                        line: diag_offset(e).map(|o| line_of(text, o)).unwrap_or(0),
                        message: format!("Cedar syntax error: {}", diag_message(e)),
                    });
                }
                ok = false;
                continue;
            }
        };
        let ranges = statement_ranges(text);
        let count = parsed.policies().count();
        if parsed.templates().next().is_some() {
            problems.push(Problem {
                file: file.clone(),
                line: 0,
                message: "templates (?principal / ?resource) are not supported: name the tenant or destination directly".into(),
            });
            ok = false;
        }
        for i in 0..count {
            // `PolicySet::from_str` names policies policy0, policy1, ... in source order.
            let Some(policy) = parsed.policy(&PolicyId::new(format!("policy{i}"))) else {
                continue;
            };
            let (start, end) = ranges.get(i).copied().unwrap_or((0, 0));
            let line = if end > 0 { line_of(text, start) } else { 0 };
            let at = |message: String| Problem {
                file: file.clone(),
                line,
                message,
            };
            let Some(id) = policy.annotation("id").map(str::to_string) else {
                problems.push(at(
                    "policy has no @id annotation: add @id(\"short-unique-name\") above it".into(),
                ));
                ok = false;
                continue;
            };
            if id.is_empty() || id.chars().any(char::is_whitespace) {
                problems.push(at(format!(
                    "@id(\"{id}\") must be non-empty and without spaces (e.g. \"eea-only\")"
                )));
                ok = false;
            }
            if id == DEFAULT_DENY_ID {
                problems.push(at(format!(
                    "@id(\"{DEFAULT_DENY_ID}\") is reserved for Cedar's implicit deny: choose another id"
                )));
                ok = false;
            }
            if let Some(prev) = located.get(&id) {
                problems.push(at(format!(
                    "duplicate @id(\"{id}\"): already used at {}:{}; every policy needs its own id",
                    prev.file, prev.line
                )));
                ok = false;
                continue;
            }
            let reason = policy.annotation("reason").map(str::trim);
            let basis = policy.annotation("legal_basis").map(str::trim);
            let text_for_people = match (reason, basis) {
                (Some(r), Some(b)) if !r.is_empty() && !b.is_empty() => {
                    format!("{r} Legal basis: {b}")
                }
                (Some(r), _) if !r.is_empty() => r.to_string(),
                (_, Some(b)) if !b.is_empty() => b.to_string(),
                _ => {
                    problems.push(at(format!(
                        "policy \"{id}\" has no @reason(\"...\") or @legal_basis(\"...\"): add one saying why, in words a reader of the decision understands"
                    )));
                    ok = false;
                    // Still added below, so schema errors in it are reported in the same run.
                    String::new()
                }
            };
            let body = text.get(start..end).unwrap_or("");
            for euid in policy.entity_literals() {
                let ty = euid.type_name().to_string();
                let eid = euid.id().unescaped();
                let problem = match ty.as_str() {
                    "Country" if !facts.countries.contains_key(eid) => Some(format!(
                        "unknown country Country::\"{eid}\": use an ISO 3166-1 alpha-2 code from countries.toml"
                    )),
                    "Zone" if !facts.zones.contains_key(eid) => Some(format!(
                        "unknown zone Zone::\"{eid}\": zones are defined in jurisdictions.toml ({})",
                        facts.zones.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    "Destination"
                        if !eid.starts_with("declared:") && !facts.regions.contains_key(eid) =>
                    {
                        Some(format!(
                            "unknown destination Destination::\"{eid}\": use provider:region from {REGIONS} (lower case) or declared:<name>"
                        ))
                    }
                    _ => None,
                };
                if let Some(message) = problem {
                    let needle = format!("{ty}::\"{eid}\"");
                    let line = body
                        .find(&needle)
                        .map(|o| line_of(text, start + o))
                        .unwrap_or(line);
                    problems.push(Problem {
                        file: file.clone(),
                        line,
                        message,
                    });
                    ok = false;
                }
            }
            if let Err(e) = set.add(policy.new_id(PolicyId::new(&id))) {
                problems.push(at(format!("cannot add policy \"{id}\": {e}")));
                ok = false;
                continue;
            }
            reasons.insert(id.clone(), text_for_people);
            let annotation = |a: Option<&str>| a.filter(|t| !t.is_empty()).map(str::to_string);
            list.push(RuleInfo {
                id: id.clone(),
                effect: match policy.effect() {
                    cedar_policy::Effect::Permit => "permit",
                    cedar_policy::Effect::Forbid => "forbid",
                },
                reason: annotation(reason),
                legal_basis: annotation(basis),
                file: file.clone(),
                line,
            });
            located.insert(
                id,
                Located {
                    file: file.clone(),
                    line,
                },
            );
        }
    }

    let schema = schema?;
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    for e in result.validation_errors() {
        let id = e.policy_id().to_string();
        let (file, line) = match located.get(&id) {
            Some(loc) => {
                let line = sources
                    .get(&loc.file)
                    .and_then(|t| diag_offset(e).map(|o| line_of(t, o)))
                    .unwrap_or(loc.line);
                (loc.file.clone(), line)
            }
            None => ("*.cedar".to_string(), 0),
        };
        problems.push(Problem {
            file,
            line,
            message: format!(
                "policy \"{id}\" does not match the schema: {}",
                diag_message(e)
            ),
        });
        ok = false;
    }
    ok.then_some(Rules {
        set,
        schema,
        reasons,
        list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_skip_comments_and_strings() {
        let text = "// a; comment\n@id(\"a;b\")\npermit(principal, action, resource);\n\n  forbid(principal, action, resource) when { \"x\\\";\" == \"y\" };\n";
        let r = statement_ranges(text);
        assert_eq!(r.len(), 2);
        assert_eq!(line_of(text, r[0].0), 2);
        assert_eq!(line_of(text, r[1].0), 5);
        assert!(text[r[1].0..r[1].1].starts_with("forbid"));
    }
}

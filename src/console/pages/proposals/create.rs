//! `POST /console/proposals` (editor): the bundle in force with the submitted change applied
//! becomes a new open proposal, and an audit record (`propose`, with both bundle hashes).

use std::collections::BTreeMap;

use super::multipart::{self, Submission};
use crate::config::OfficerRole;
use crate::console::proposals::names;
use crate::console::proposals::store::NewProposal;
use crate::console::{Act, ConsoleError, Ctx, Reply};

pub async fn post(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    ctx.require(OfficerRole::Editor)?;
    let sub = multipart::read(ctx).await?;
    let base = super::base_files(ctx)?;
    let files = proposed(&base, &sub)?;
    let store = super::store(ctx);
    let p = store.create(NewProposal {
        proposer: ctx.officer.name.clone(),
        proposer_certificate: ctx.officer.fingerprint.clone(),
        summary: sub.summary.clone(),
        base: crate::policy::PolicyBundle::hash_sources(&base),
        files,
        now_ms: super::now_ms(),
    })?;
    let act = Act {
        action: "propose".into(),
        target: p.meta.id.clone(),
        outcome: "proposed".into(),
        detail: p.meta.summary.clone(),
        old_bundle: Some(p.meta.base.clone()),
        new_bundle: Some(p.meta.hash.clone()),
    };
    if let Err(e) = ctx.record(act) {
        // Unrecorded, it must not exist.
        if let Err(r) = store.remove(&p.meta.id) {
            tracing::error!(error = %r, proposal = %p.meta.id, "unrecorded proposal not removed");
        }
        return Err(e);
    }
    tracing::info!(proposal = %p.meta.id, officer = %ctx.officer.name, "policy change proposed");
    Ok(Reply::SeeOther(format!("/console/proposals/{}", p.meta.id)))
}

/// `base` with the submission applied: uploads first, then the edited (or deleted) file.
fn proposed(
    base: &BTreeMap<String, String>,
    sub: &Submission,
) -> Result<BTreeMap<String, String>, ConsoleError> {
    let mut files = base.clone();
    for (name, bytes) in &sub.uploads {
        names::check_name(name)?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| {
            ConsoleError::BadRequest(format!("{name} is not UTF-8 text; bundle files are text"))
        })?;
        files.insert(name.clone(), text);
    }
    let target = sub.new_file.as_deref().or(sub.file.as_deref());
    let content = sub
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        // Browsers send a textarea's lines with CRLF; the bundle's files use LF.
        .map(|c| c.replace("\r\n", "\n"));
    match (target, sub.delete, content) {
        (Some(name), true, _) if files.remove(name).is_none() => {
            return Err(ConsoleError::BadRequest(format!(
                "cannot delete {name:?}: the bundle has no such file"
            )));
        }
        (Some(_), true, _) => {}
        (Some(name), false, Some(text)) => {
            names::check_name(name)?;
            files.insert(name.to_string(), text);
        }
        (None, _, Some(_)) => {
            return Err(ConsoleError::BadRequest(
                "the editor has text but no file is chosen: choose a file or name a new one".into(),
            ));
        }
        _ => {}
    }
    names::check_bundle(&files)?;
    if &files == base {
        return Err(ConsoleError::BadRequest(
            "nothing changed: edit a file, name a new one, delete one or upload files".into(),
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("default.cedar".to_string(), "a\n".to_string()),
            ("regions.toml".to_string(), "r\n".to_string()),
        ])
    }

    #[test]
    fn edits_uploads_and_deletes_apply() {
        let sub = Submission {
            file: Some("default.cedar".into()),
            content: Some("b\r\nc".into()),
            uploads: vec![("extra.cedar".into(), b"x".to_vec())],
            ..Submission::default()
        };
        let f = proposed(&base(), &sub).unwrap();
        assert_eq!(f["default.cedar"], "b\nc");
        assert_eq!(f["extra.cedar"], "x");
        let del = Submission {
            file: Some("default.cedar".into()),
            delete: true,
            ..Submission::default()
        };
        assert!(
            !proposed(&base(), &del)
                .unwrap()
                .contains_key("default.cedar")
        );
    }

    #[test]
    fn hostile_or_empty_submissions_are_refused() {
        let up = |n: &str| Submission {
            uploads: vec![(n.into(), b"x".to_vec())],
            ..Submission::default()
        };
        assert!(proposed(&base(), &up("../x.cedar")).is_err());
        assert!(proposed(&base(), &up(".x.cedar")).is_err());
        assert!(proposed(&base(), &up("x.txt")).is_err());
        let bin = Submission {
            uploads: vec![("x.cedar".into(), vec![0xff, 0xfe])],
            ..Submission::default()
        };
        assert!(proposed(&base(), &bin).is_err());
        let new = Submission {
            new_file: Some("../../etc/x.cedar".into()),
            content: Some("x".into()),
            ..Submission::default()
        };
        assert!(proposed(&base(), &new).is_err());
        assert!(proposed(&base(), &Submission::default()).is_err());
        let same = Submission {
            file: Some("default.cedar".into()),
            content: Some("a\r\n".into()),
            ..Submission::default()
        };
        assert!(proposed(&base(), &same).is_err());
    }
}

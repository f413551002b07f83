//! `/console/proposals/new`: the form to propose a change. Pick a bundle file to edit (its text
//! is put in the editor with `?file=`), or name a new one, or upload files; plus a summary.
//! The form is multipart (for the upload), so its CSRF token also rides in the action's query.

use maud::{Markup, html};

use crate::config::OfficerRole;
use crate::console::{ConsoleError, Ctx, Reply, page};

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    ctx.require(OfficerRole::Editor)?;
    let files = super::base_files(ctx)?;
    let chosen = ctx.query.non_empty("file");
    let content = match chosen {
        Some(name) => Some(files.get(name).ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "the bundle has no file {name:?}; choose one from the list"
            ))
        })?),
        None => None,
    };
    let action = format!("/console/proposals?csrf={}", ctx.csrf_token());
    Ok(Reply::page(
        "Propose a change",
        html! {
            h1 { "Propose a policy change" }
            p { "Edit a file of the bundle in force:" }
            ul #files {
                @for name in files.keys() {
                    li { a href={ "/console/proposals/new?file=" (name) } { (name) } }
                }
            }
            form #propose method="post" action=(action) enctype="multipart/form-data" {
                (page::csrf_field(ctx))
                p {
                    label for="file" { "File " }
                    select #file name="file" {
                        option value="" selected[chosen.is_none()] { "(a new file, named below)" }
                        @for name in files.keys() {
                            option value=(name) selected[chosen == Some(name.as_str())] { (name) }
                        }
                    }
                    " or new file "
                    input #new_file type="text" name="new_file" placeholder="tenant-x.cedar or tests/x.toml";
                }
                p {
                    label for="content" { "Content" }
                    br;
                    // HTML drops one newline right after <textarea>: this one, not the file's own.
                    textarea #content name="content" rows="24" cols="100" { "\n" (content.map(String::as_str).unwrap_or("")) }
                }
                p {
                    label { input type="checkbox" name="delete" value="1"; " delete this file from the bundle" }
                }
                (upload())
                p {
                    label for="summary" { "Summary " }
                    input #summary type="text" name="summary" size="80" required maxlength="500";
                }
                button #submit-proposal type="submit" { "Submit proposal" }
            }
        },
    ))
}

fn upload() -> Markup {
    html! {
        p {
            label for="bundle_files" { "Or upload bundle files (they replace files of the same name) " }
            input #bundle_files type="file" name="bundle_files" multiple;
        }
    }
}

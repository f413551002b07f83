//! Who the console thinks you are: name, roles, certificate. Useful when a page is refused.

use maud::html;

use crate::console::{Ctx, Reply};

pub fn get(ctx: &Ctx<'_>) -> Reply {
    let o = ctx.officer;
    Reply::page(
        "Who am I",
        html! {
            h1 { "Logged in as " (o.name) }
            table {
                tr { th { "Roles" } td #roles { (o.roles_text()) } }
                tr { th { "Certificate" } td { code { (o.fingerprint) } } }
            }
        },
    )
}

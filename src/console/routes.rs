//! Which page answers which path. GET pages only read; every POST changes something and has
//! passed the CSRF check in `Console::handle`.

use hyper::Method;

use super::pages;
use super::{ConsoleError, Ctx, Reply};

pub(super) async fn route(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let get = ctx.method == Method::GET || ctx.method == Method::HEAD;
    match (get, ctx.path) {
        (true, "/console" | "/console/") => Ok(Reply::SeeOther("/console/matrix".into())),
        (true, "/console/whoami") => Ok(pages::whoami::get(ctx)),
        (true, "/console/matrix") => pages::matrix::get(ctx).await,
        (true, "/console/explain") => pages::explain::get(ctx),
        (true, "/console/policies") => pages::policies::get(ctx),
        (true, "/console/destinations") => pages::destinations::get(ctx),
        (_, p) if p == "/console/proposals" || p.starts_with("/console/proposals/") => {
            pages::proposals::route(ctx, get).await
        }
        (true, "/console/audit") => pages::audit::get(ctx).await,
        (true, "/console/audit/export") => pages::audit::export(ctx).await,
        (true, "/console/register") => pages::register::get(ctx).await,
        (true, "/console/register/export") => pages::register::export(ctx).await,
        _ => Err(ConsoleError::NotFound(format!(
            "no console page at {} for {}",
            ctx.path, ctx.method
        ))),
    }
}

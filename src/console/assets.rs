//! The console's static files, compiled in: htmx (vendored, 0BSD, see `assets/htmx.LICENSE`)
//! and the stylesheet. No build step, nothing fetched from elsewhere.

/// htmx 2.0.11, `dist/htmx.min.js` from the npm package, unmodified.
const HTMX: &str = include_str!("assets/htmx.min.js");
const CSS: &str = include_str!("assets/console.css");

/// The file at `name` under `/console/static/`, with its content type.
pub(super) fn get(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "htmx.min.js" => Some(("text/javascript; charset=utf-8", HTMX)),
        "console.css" => Some(("text/css; charset=utf-8", CSS)),
        _ => None,
    }
}

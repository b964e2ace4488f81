//! The admin console at `/_/`: plain JavaScript modules and a stylesheet
//! from `gateway/console/`, embedded in the binary (nothing fetched from a
//! CDN, no build step: the files served are the files in the repository).
//! The console is a client of the public API with the signed-in user's
//! token, so it can do exactly what that user can do on any other surface.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use domain::ErrorCode;

use crate::error::ApiError;

/// Where the console is served.
pub const ROOT: &str = "/_/";

const JS: &str = "text/javascript; charset=utf-8";

/// Every embedded file: path under the console, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("../console/console.css")),
    ("app.js", JS, include_bytes!("../console/app.js")),
    ("api.js", JS, include_bytes!("../console/api.js")),
    ("dom.js", JS, include_bytes!("../console/dom.js")),
    ("live.js", JS, include_bytes!("../console/live.js")),
    ("people.js", JS, include_bytes!("../console/people.js")),
    ("views/access.js", JS, include_bytes!("../console/views/access.js")),
    ("views/form.js", JS, include_bytes!("../console/views/form.js")),
    ("views/log.js", JS, include_bytes!("../console/views/log.js")),
    ("views/objects.js", JS, include_bytes!("../console/views/objects.js")),
    ("views/projections.js", JS, include_bytes!("../console/views/projections.js")),
    ("views/record.js", JS, include_bytes!("../console/views/record.js")),
    ("views/records.js", JS, include_bytes!("../console/views/records.js")),
    ("views/signin.js", JS, include_bytes!("../console/views/signin.js")),
];

/// The names of the embedded files (a test checks they are every file of the folder).
pub fn files() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _, _)| *name)
}

fn serve(name: &str) -> Result<Response, ApiError> {
    let (_, content_type, bytes) =
        FILES.iter().find(|(file, _, _)| *file == name).ok_or_else(|| ApiError::new(ErrorCode::EndpointNotFound, format!("no console file '{name}'")))?;
    // Revalidated on every load: a new binary's console is never mixed with an old one's cached modules.
    Ok(([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response())
}

/// `GET /_`: to the console's root.
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent(ROOT)
}

/// `GET /_/`: the console's page.
pub(crate) async fn index() -> Result<Response, ApiError> {
    serve("index.html")
}

/// `GET /_/{*file}`: one of its files.
pub(crate) async fn file(Path(file): Path<String>) -> Result<Response, ApiError> {
    serve(&file)
}

//! GraphiQL, served offline: its assets (GraphiQL 4.1.2, React 18.3.1) are
//! embedded in the binary from `gateway/assets/graphiql/` (fetched by
//! `ops/vendor-graphiql`, checked against `SHA256SUMS` by `ops/test`), so the
//! page works on a machine without internet access and under a CSP that
//! allows only this server.

use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use domain::ErrorCode;

use crate::error::ApiError;

/// Where the page's assets are served.
pub const ASSETS: &str = "/api/v1/graphql/assets";

/// Every embedded asset: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("react.production.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/react.production.min.js")),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/react-dom.production.min.js")),
    ("graphiql.min.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("../../assets/graphiql/graphiql.min.css")),
    ("start.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/graphiql/start.js")),
];

/// The GraphiQL page.
pub fn page() -> Response {
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>GraphiQL · objectstack</title>
    <link rel="stylesheet" href="{ASSETS}/graphiql.min.css">
    <style>body {{ margin: 0; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
  </head>
  <body>
    <div id="graphiql">Loading...</div>
    <script src="{ASSETS}/react.production.min.js"></script>
    <script src="{ASSETS}/react-dom.production.min.js"></script>
    <script src="{ASSETS}/graphiql.min.js"></script>
    <script src="{ASSETS}/start.js"></script>
  </body>
</html>"#
    ))
    .into_response()
}

/// `GET /api/v1/graphql/assets/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) =
        FILES.iter().find(|(name, _, _)| *name == file).ok_or_else(|| ApiError::new(ErrorCode::EndpointNotFound, format!("no asset '{file}'")))?;
    Ok(([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes).into_response())
}

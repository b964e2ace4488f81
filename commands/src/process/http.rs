//! Calling out: webhook deliveries and flows' `http_request` nodes, over
//! HTTP/1.1 or HTTPS (hyper's pooled client with rustls), a time limit per
//! attempt, and the signature headers a receiver checks:
//! `X-ObjectStack-Timestamp` (Unix seconds) and `X-ObjectStack-Signature:
//! sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed by the secret>`.
//!
//! A server's certificate is verified against the system's roots (which
//! honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), Mozilla's roots, and the CA
//! certificates an operator names ([`Outbound::new`]); there is no switch to
//! turn verification off.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use domain::automation::webhook::Authentication;
use domain::automation::Webhook;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::Sha256;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client a node calls out with: one connection pool, shared by its
/// webhooks and flows; cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: HttpClient,
}

/// Why the outbound client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the CA file holds no PEM certificate")]
    NoCertificate,
    #[error("a certificate of the CA file is not valid: {0}")]
    BadCertificate(String),
    #[error("TLS could not be set up: {0}")]
    Tls(String),
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// A client that trusts the system's roots, Mozilla's, and the PEM
    /// certificates of `extra_ca` (an operator's own CA).
    pub fn new(extra_ca: Option<&[u8]>) -> Result<Outbound, OutboundError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Unreadable system certificates are skipped: Mozilla's roots remain.
        let native = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(native.certs);
        if let Some(pem) = extra_ca {
            let mut found = 0;
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|e| OutboundError::BadCertificate(e.to_string()))?;
                roots.add(certificate).map_err(|e| OutboundError::BadCertificate(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(OutboundError::NoCertificate);
            }
        }
        // ring rather than aws-lc-rs: no C toolchain beyond cc, a fraction of
        // the build; the price is no post-quantum key exchange (hence the
        // deprecation), which receivers do not require.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OutboundError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(Outbound { client })
    }
}

/// What one attempt got: the status (0 when there was no answer) and why it failed.
pub(crate) struct Attempt {
    pub status: u16,
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Worth trying again: no answer, a time-out, too many requests, or a server error.
    pub fn retryable(&self) -> bool {
        matches!(self.status, 0 | 408 | 425 | 429) || self.status >= 500
    }
}

/// `sha256=<hex>` over `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", domain::hex::encode(&bytes))
}

pub(crate) async fn send(outbound: &Outbound, hook: &Webhook, delivery_id: &str, trigger: &str, body: &[u8], now_seconds: i64) -> Attempt {
    let mut request = hyper::Request::builder()
        .method(hook.method.as_str())
        .uri(hook.url.as_str())
        .header("content-type", "application/json")
        .header("user-agent", concat!("objectstack-rs/", env!("CARGO_PKG_VERSION")))
        .header("x-objectstack-webhook", hook.name.as_str())
        .header("x-objectstack-delivery", delivery_id)
        .header("x-objectstack-event", trigger)
        .header("x-objectstack-timestamp", now_seconds.to_string());
    if let Some(secret) = &hook.secret {
        request = request.header("x-objectstack-signature", signature(secret, now_seconds, body));
    }
    match &hook.authentication {
        Some(Authentication::Bearer { token }) => request = request.header("authorization", format!("Bearer {token}")),
        Some(Authentication::Basic { username, password }) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            request = request.header("authorization", format!("Basic {encoded}"));
        }
        Some(Authentication::ApiKey { header, key }) => request = request.header(header.as_str(), key.as_str()),
        None => {}
    }
    for (name, value) in &hook.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = match request.body(Full::new(Bytes::copy_from_slice(body))) {
        Ok(request) => request,
        Err(error) => return Attempt { status: 0, error: Some(format!("invalid request: {error}")) },
    };
    let exchange = async {
        let response = outbound.client.request(request).await.map_err(|e| format!("no answer: {}", chain(&e)))?;
        let status = response.status().as_u16();
        // Read (and drop) the body so the connection goes back to the pool.
        let _ = response.into_body().collect().await;
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(Duration::from_millis(hook.timeout_ms), exchange).await {
        Ok(Ok(status)) => Attempt { status, error: (!(200..300).contains(&status)).then(|| format!("the receiver answered {status}")) },
        Ok(Err(error)) => Attempt { status: 0, error: Some(error) },
        Err(_) => Attempt { status: 0, error: Some(format!("no answer within {} ms", hook.timeout_ms)) },
    }
}

/// An error with its causes: hyper's own says only "client error (Connect)",
/// the certificate problem is further down.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// A URL as errors show it: scheme, host, port and path, without a user,
/// password, query or fragment (where an app's URL carries its API keys).
fn shown(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => {
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", uri.scheme_str().unwrap_or("http"), uri.path())
        }
        Err(_) => "the URL".to_string(),
    }
}

/// Most bytes of an answer a flow reads.
const MAX_ANSWER: usize = 1 << 20;

/// One HTTP call of a flow: its status and body (JSON when it parses, else text).
pub(crate) async fn call(
    outbound: &Outbound,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&serde_json::Value>,
    timeout_ms: u64,
) -> Result<(u16, serde_json::Value), String> {
    let mut request = hyper::Request::builder().method(method).uri(url).header("user-agent", concat!("objectstack-rs/", env!("CARGO_PKG_VERSION")));
    let bytes = match body {
        Some(serde_json::Value::String(text)) => Bytes::from(text.clone()),
        Some(json) => {
            request = request.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(json).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Full::new(bytes)).map_err(|e| format!("invalid request: {e}"))?;
    let exchange = async {
        let response = outbound.client.request(request).await.map_err(|e| format!("no answer from {}: {}", shown(url), chain(&e)))?;
        let status = response.status().as_u16();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER);
        let body = limited.collect().await.map_err(|e| format!("reading the answer of {}: {e}", shown(url)))?.to_bytes();
        let answer = serde_json::from_slice(&body).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, answer))
    };
    tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await.map_err(|_| format!("no answer from {} within {timeout_ms} ms", shown(url)))?
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn errors_show_a_url_without_its_credentials_or_query() {
        assert_eq!(shown("https://user:secret@api.example.com:8443/v1/items?key=abc#x"), "https://api.example.com:8443/v1/items");
        assert_eq!(shown("http://127.0.0.1/hook"), "http://127.0.0.1/hook");
        assert_eq!(shown("not a url at all"), "the URL");
    }
}

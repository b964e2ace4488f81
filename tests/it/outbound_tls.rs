//! Calling out over HTTPS: webhooks and an api flow's `http_request` node
//! reach receivers on 127.0.0.1 that serve certificates made for the test.
//! A receiver whose certificate chains to the CA the operator names
//! (`outbound_ca`) gets signed deliveries, by IP address and by host name;
//! one whose certificate comes from another CA gets no request at all, and
//! the delivery log says why. A CA file without a certificate stops the start.
//! The client is the same on both stores, so these run on the embedded one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use gateway::config::{Settings, Storage};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value as Json};

use crate::automation::{app, eventually, hmac_sha256, node_trusting};
use crate::common;

/// A certificate authority made for one test.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn authority(name: &str) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Authority { pem, issuer: Issuer::new(params, key) }
}

/// A server certificate for `127.0.0.1` and `localhost`, signed by `ca`.
fn server_identity(ca: &Authority) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, &ca.issuer).unwrap();
    (certificate.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

/// Each request a receiver answered: its path, headers and body.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

/// An HTTPS receiver on 127.0.0.1 answering every request 200 `{"ok":true}`: its port.
async fn tls_receiver(identity: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> (u16, Seen) {
    #[allow(deprecated)] // the provider the server's client uses (see commands::process::http)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![identity.0], identity.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), recorded.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends here, before any request.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes().to_vec();
                        seen.lock().unwrap().push((parts.uri.path().to_string(), parts.headers, body));
                        let answer =
                            hyper::Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                        Ok::<_, hyper::Error>(answer.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
            });
        }
    });
    (port, seen)
}

fn tls_app(trusted: u16, rogue: u16) -> String {
    app(json!({
        "webhooks": [
            {"name": "secure", "object": "ticket", "url": format!("https://localhost:{trusted}/hook"), "secret": "s3cret", "isActive": true,
             "triggers": ["create"], "timeoutMs": 5000},
            {"name": "rogue", "object": "ticket", "url": format!("https://127.0.0.1:{rogue}/hook"), "isActive": true,
             "triggers": ["create"], "timeoutMs": 5000, "retryPolicy": {"maxRetries": 0}}
        ],
        "flows": [
            {"name": "ping", "label": "Ping", "type": "api", "runAs": "system", "status": "active",
             "variables": [{"name": "who", "type": "text", "isInput": true, "isOutput": false},
                           {"name": "answer", "type": "object", "isInput": false, "isOutput": true}],
             "nodes": [{"id": "begin", "type": "start"},
                       {"id": "call", "type": "http_request", "config": {"method": "POST", "url": format!("https://127.0.0.1:{trusted}/flow"), "body": "=who", "outputVariable": "answer"}},
                       {"id": "done", "type": "end"}],
             "edges": [{"source": "begin", "target": "call"}, {"source": "call", "target": "done"}]}
        ]
    }))
}

#[tokio::test]
async fn webhooks_and_flows_call_https_receivers_whose_certificates_the_operator_trusts() {
    let trusted_ca = authority("objectstack test CA");
    let rogue_ca = authority("someone else's CA");
    let (trusted, seen) = tls_receiver(server_identity(&trusted_ca)).await;
    let (rogue, rogue_seen) = tls_receiver(server_identity(&rogue_ca)).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &trusted_ca.pem).unwrap();
    let (storage, _dir) = common::storage(false);
    let node = node_trusting(storage, &tls_app(trusted, rogue), true, Some(ca_file)).await;

    let created = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "over tls"}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    eventually("the delivery over HTTPS", Duration::from_secs(15), || async { !seen.lock().unwrap().is_empty() }).await;
    let (path, headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/hook");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let timestamp = header("x-objectstack-timestamp");
    assert_eq!(header("x-objectstack-signature"), hmac_sha256("s3cret", &format!("{timestamp}."), &body), "signed as over plain HTTP");
    let delivered: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(delivered["recordId"], json!(id));

    // The receiver with a certificate from another CA never sees a request;
    // the delivery log records the failure and its cause.
    let n = &node;
    let log = move |name: &'static str| async move { n.ok(&n.admin, "GET", &format!("/api/v1/webhooks/{name}/deliveries"), None).await["deliveries"].clone() };
    eventually("the refused delivery in the log", Duration::from_secs(15), || async { log("rogue").await.as_array().is_some_and(|d| d.len() == 1) }).await;
    let refused = log("rogue").await[0].clone();
    assert_eq!(refused["delivered"], json!(false), "{refused}");
    let error = refused["error"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(error.contains("certificate"), "the log says why: {refused}");
    assert!(rogue_seen.lock().unwrap().is_empty(), "no request reached a server the client does not trust");
    eventually("the trusted delivery in the log", Duration::from_secs(15), || async { log("secure").await.as_array().is_some_and(|d| d.len() == 1) }).await;
    assert_eq!(log("secure").await[0]["delivered"], json!(true));

    // An api flow's http_request node uses the same client.
    let ran = node.call(&node.admin, "POST", "/api/v1/automation/trigger/ping", Some(json!({"who": "flow"}))).await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    assert_eq!(ran.body["result"]["answer"], json!({"status": 200, "body": {"ok": true}}), "{}", ran.body);
    let flow_calls: Vec<_> = seen.lock().unwrap().iter().filter(|(path, ..)| path == "/flow").map(|(_, _, body)| body.clone()).collect();
    assert_eq!(flow_calls, [b"flow".to_vec()], "a text body goes as it is");
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let app_file = dir.path().join("app.json");
    std::fs::write(&app_file, app(json!({}))).unwrap();
    let settings = Settings { outbound_ca: Some(ca_file), ..Settings::local(Storage::Embedded(dir.path().join("data")), Some(app_file)) };
    let error = match gateway::app::start(&settings).await {
        Ok(_) => panic!("started with a CA file that holds no certificate"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("ca.pem") && error.contains("holds no PEM certificate"), "{error}");
    assert!(!dir.path().join("data").exists(), "nothing is opened before the client is made");
}

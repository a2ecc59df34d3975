//! TEST STAND-IN, not part of the product: a tiny HTTPS admission webhook that
//! plays Istio's sidecar injector in the control-plane-only tests
//! (`harness/tests/apiserver_outage.rs`). It runs in a container on the test run's
//! `--internal` network and answers every AdmissionReview with a JSONPatch that adds
//! an `istio-proxy` container. Its certificate names the address Docker gave the
//! container, so the test uploads it after the start: the server waits (bounded)
//! for `/certs/tls.crt` and `/certs/tls.key`, then listens on `0.0.0.0:443`. One
//! connection at a time; the API server is its only client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

type Failure = Box<dyn std::error::Error>;

/// The patch: append an `istio-proxy` container, as the injector would. Its image
/// is `ecp.test/stand-in-proxy:1`, or with a first argument `MESH` (a stand-in per
/// mesh, `harness/tests/apiserver_multi_mesh.rs`) `ecp.test/stand-in-proxy-MESH:1`,
/// so a test sees whose patch a pod got.
fn patch() -> String {
    let image = match std::env::args().nth(1) {
        Some(mesh) => format!("ecp.test/stand-in-proxy-{mesh}:1"),
        None => "ecp.test/stand-in-proxy:1".to_string(),
    };
    format!(
        r#"[{{"op":"add","path":"/spec/containers/-","value":{{"name":"istio-proxy","image":"{image}"}}}}]"#
    )
}

fn main() -> Result<(), Failure> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cert, key) = certificate()?;
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
    let config = Arc::new(
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?,
    );
    let listener = TcpListener::bind("0.0.0.0:443")?;
    eprintln!("stand-in injector listening on 0.0.0.0:443");
    for tcp in listener.incoming() {
        let served = tcp.map_err(Failure::from).and_then(|tcp| serve(config.clone(), tcp));
        if let Err(e) = served {
            eprintln!("connection failed: {e}");
        }
    }
    Ok(())
}

/// The uploaded certificate and key, waited for up to a minute.
fn certificate() -> Result<(String, String), Failure> {
    for _ in 0..600 {
        if let (Ok(cert), Ok(key)) =
            (std::fs::read_to_string("/certs/tls.crt"), std::fs::read_to_string("/certs/tls.key"))
            && !cert.is_empty()
            && !key.is_empty()
        {
            return Ok((cert, key));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("no /certs/tls.crt and /certs/tls.key within 60 s".into())
}

/// Serves the requests of one connection (keep-alive) until the client closes it.
fn serve(config: Arc<rustls::ServerConfig>, tcp: TcpStream) -> Result<(), Failure> {
    let conn = rustls::ServerConnection::new(config)?;
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let mut length = None;
        let mut line = String::new();
        if tls.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            tls.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let mut body = vec![0; length.ok_or("no content-length")?];
        tls.read_exact(&mut body)?;
        let answer = review(&body)?;
        let stream = tls.get_mut();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )?;
        stream.flush()?;
    }
}

/// The AdmissionReview answer: allowed, with the patch.
fn review(body: &[u8]) -> Result<String, Failure> {
    let request: serde_json::Value = serde_json::from_slice(body)?;
    let uid = request["request"]["uid"].as_str().ok_or("no request uid")?;
    let patch = base64::engine::general_purpose::STANDARD.encode(patch());
    Ok(serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch}
    })
    .to_string())
}

//! HTTP from this process (outside the mesh) to an address on the clusters'
//! network: the greeting through the ingress gateway's LoadBalancer IP (procedure.md
//! step 7), and the host's traffic stream of the outage scenario.
//!
//! reqwest, set up to behave as a plain client would: no proxy (an `HTTP_PROXY` of
//! the environment must not carry a request meant for a kind network, nor send it
//! off the machine), a fresh connection per request (no pooled keep-alive
//! connection outliving an outage), and bounded connect and request times.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for requests from the host; build one per check and reuse it.
#[derive(Debug, Clone)]
pub struct HostClient {
    client: reqwest::Client,
    request_timeout: Duration,
}

impl HostClient {
    pub fn new() -> Result<Self, String> {
        Self::with_timeouts(CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    fn with_timeouts(connect: Duration, request: Duration) -> Result<Self, String> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect)
            .timeout(request)
            .pool_max_idle_per_host(0)
            .user_agent("ecp-harness")
            .build()
            .map_err(|e| format!("building the HTTP client: {}", reason(e)))?;
        Ok(Self { client, request_timeout: request })
    }

    /// `GET http://<ip>:<port><path>`; the body of a `200 OK` answer, anything else
    /// an error saying what was answered or why nothing was.
    pub async fn get(&self, ip: IpAddr, port: u16, path: &str) -> Result<String, String> {
        let url = format!("http://{}{path}", SocketAddr::new(ip, port));
        let timed_out = |e: reqwest::Error| {
            if e.is_timeout() {
                format!("no answer within {:?}", self.request_timeout)
            } else {
                reason(e)
            }
        };
        let response = self.client.get(&url).send().await.map_err(timed_out)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("answered `{:?} {status}`", response.version()));
        }
        response.text().await.map_err(timed_out)
    }
}

/// One `GET http://<ip>:<port><path>` from this process, returning the body of a
/// `200 OK` answer ([`HostClient::get`] with a client of its own).
pub async fn http_get(ip: IpAddr, port: u16, path: &str) -> Result<String, String> {
    HostClient::new()?.get(ip, port, path).await
}

/// A reqwest error with its causes on one line, without the URL (the caller names
/// the address).
fn reason(e: reqwest::Error) -> String {
    crate::kube::error_chain(&e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback server answering every connection with `answer`, counting
    /// connections and keeping the last request's head.
    struct Server {
        port: u16,
        connections: Arc<AtomicUsize>,
        last_request: Arc<std::sync::Mutex<String>>,
    }

    async fn serve(answer: &'static [u8]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let last_request = Arc::new(std::sync::Mutex::new(String::new()));
        let (count, last) = (connections.clone(), last_request.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let last = last.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    *last.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
                    if !answer.is_empty() {
                        let _ = stream.write_all(answer).await;
                        let _ = stream.shutdown().await;
                    } else {
                        // Never answer: the client's timeout must end the request.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                });
            }
        });
        Server { port, connections, last_request }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn a_chunked_answer_is_decoded_and_each_request_has_its_own_connection() {
        let server = serve(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nHello \r\n3\r\nv1!\r\n0\r\n\r\n",
        )
        .await;
        let client = HostClient::new().unwrap();
        for _ in 0..2 {
            assert_eq!(client.get(LOOPBACK, server.port, "/hello").await.unwrap(), "Hello v1!");
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 2, "no pooled connection");
        let request = server.last_request.lock().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /hello http/1.1\r\n"), "{request}");
        assert!(request.contains("user-agent: ecp-harness\r\n"), "{request}");
        assert!(request.contains(&format!("host: 127.0.0.1:{}\r\n", server.port)), "{request}");
    }

    #[tokio::test]
    async fn only_200_is_an_answer() {
        let server = serve(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n\r\nno healthy upstream",
        )
        .await;
        let err = http_get(LOOPBACK, server.port, "/hello").await.unwrap_err();
        assert_eq!(err, "answered `HTTP/1.1 503 Service Unavailable`");
    }

    #[tokio::test]
    async fn a_silent_server_is_bounded_by_the_request_timeout() {
        let server = serve(b"").await;
        let client =
            HostClient::with_timeouts(Duration::from_secs(1), Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let err = client.get(LOOPBACK, server.port, "/").await.unwrap_err();
        assert_eq!(err, "no answer within 300ms");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = http_get(LOOPBACK, port, "/").await.unwrap_err();
        assert!(err.to_ascii_lowercase().contains("refused"), "{err}");
    }
}

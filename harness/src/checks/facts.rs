//! The facts the guide checks (procedure.md "What the anchors check"), as functions
//! shared by the executor's `Verify` actions and the conformance scenarios: pure
//! readers of Kubernetes objects and command output first, then the cluster checks
//! built on them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, AttachParams, ListParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::version::IstiodAddressObject;

/// The istio-proxy container's name.
pub const ISTIO_PROXY: &str = "istio-proxy";
/// How long one request of a greeting check may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A check that did not hold: what was checked, on which cluster, and what was seen.
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: {check}: {detail}")]
pub struct CheckFailed {
    pub cluster: String,
    pub check: String,
    pub detail: String,
}

fn failed(cluster: &str, check: impl Into<String>, detail: impl Into<String>) -> CheckFailed {
    CheckFailed { cluster: cluster.to_string(), check: check.into(), detail: detail.into() }
}

// ---- pure readers -------------------------------------------------------------

/// helloworld's answer: `Hello version: v1, instance: helloworld-v1-6d9c...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub version: String,
    pub instance: String,
}

/// Reads helloworld's greeting from a response body (surrounding whitespace allowed).
pub fn parse_greeting(body: &str) -> Option<Greeting> {
    let rest = body.trim().strip_prefix("Hello version: ")?;
    let (version, instance) = rest.split_once(", instance: ")?;
    let instance = instance.trim();
    let valid = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (valid(version) && valid(instance))
        .then(|| Greeting { version: version.to_string(), instance: instance.to_string() })
}

/// Where a pod's `istio-proxy` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarPlacement {
    /// In `spec.containers` (1.22-1.26 by default).
    Container,
    /// In `spec.initContainers` with `restartPolicy: Always` (native sidecar, 1.27+
    /// on 1.33+ kubelets).
    NativeInit,
}

/// Where the pod's `istio-proxy` sidecar is, looking in both lists.
pub fn sidecar_placement(pod: &Pod) -> Option<SidecarPlacement> {
    let spec = pod.spec.as_ref()?;
    if spec.containers.iter().any(|c| c.name == ISTIO_PROXY) {
        return Some(SidecarPlacement::Container);
    }
    spec.init_containers
        .iter()
        .flatten()
        .any(|c| c.name == ISTIO_PROXY && c.restart_policy.as_deref() == Some("Always"))
        .then_some(SidecarPlacement::NativeInit)
}

/// `ready/total` as `kubectl get pods` shows it: containers plus native sidecars
/// (init containers with `restartPolicy: Always`).
pub fn ready_containers(pod: &Pod) -> (u32, u32) {
    let Some(spec) = pod.spec.as_ref() else { return (0, 0) };
    let sidecars: BTreeSet<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let total = spec.containers.len() + sidecars.len();
    let status = pod.status.as_ref();
    let ready_main = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().filter(|c| c.ready).count());
    let ready_sidecars = status.and_then(|s| s.init_container_statuses.as_ref()).map_or(0, |cs| {
        cs.iter().filter(|c| c.ready && sidecars.contains(c.name.as_str())).count()
    });
    (count(ready_main + ready_sidecars), count(total))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why a pod does not meet "Running, `containers` ready, with istio-proxy", or `None`.
pub fn pod_not_ready_reason(pod: &Pod, containers: u32, sidecar: bool) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    if phase != "Running" {
        return Some(format!("pod {name} is {phase}"));
    }
    let (ready, total) = ready_containers(pod);
    if ready != containers || total != containers {
        return Some(format!("pod {name} is {ready}/{total}, expected {containers}/{containers}"));
    }
    if sidecar && sidecar_placement(pod).is_none() {
        return Some(format!("pod {name} has no {ISTIO_PROXY} container or native sidecar"));
    }
    None
}

/// The names of webhook configurations whose content mentions `text`
/// (istio/istio#37674: the external cluster's must not mention `external-istiod`).
pub fn webhooks_mentioning(
    mutating: &[MutatingWebhookConfiguration],
    validating: &[ValidatingWebhookConfiguration],
    text: &str,
) -> Vec<String> {
    let mentions = |value: serde_json::Result<String>| value.is_ok_and(|s| s.contains(text));
    let m = mutating
        .iter()
        .filter(|w| mentions(serde_json::to_string(w)))
        .map(|w| format!("mutating {}", w.metadata.name.as_deref().unwrap_or("")));
    let v = validating
        .iter()
        .filter(|w| mentions(serde_json::to_string(w)))
        .map(|w| format!("validating {}", w.metadata.name.as_deref().unwrap_or("")));
    m.chain(v).collect()
}

const ISTIOD_PORTS: [i32; 2] = [15012, 15017];

/// Whether an `istiod` Endpoints object points at `address` with ports 15012 and 15017.
pub fn endpoints_point_at(endpoints: &Endpoints, address: IpAddr) -> bool {
    let address = address.to_string();
    endpoints.subsets.iter().flatten().any(|subset| {
        let has_address = subset.addresses.iter().flatten().any(|a| a.ip == address);
        let ports: BTreeSet<i32> = subset.ports.iter().flatten().map(|p| p.port).collect();
        has_address && ISTIOD_PORTS.iter().all(|p| ports.contains(p))
    })
}

/// Whether an EndpointSlice points at `address` with ports 15012 and 15017.
pub fn slice_points_at(slice: &EndpointSlice, address: IpAddr) -> bool {
    let address = address.to_string();
    let has_address = slice.endpoints.iter().flatten().any(|e| e.addresses.contains(&address));
    let ports: BTreeSet<i32> = slice.ports.iter().flatten().filter_map(|p| p.port).collect();
    has_address && ISTIOD_PORTS.iter().all(|p| ports.contains(p))
}

/// The first ingress IP of a LoadBalancer Service.
pub fn load_balancer_ip(service: &Service) -> Option<IpAddr> {
    service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .iter()
        .flatten()
        .find_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
}

/// Tallies greetings by version over `bodies`; bodies that are no greeting are kept
/// (at most 3) to explain a failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GreetingTally {
    pub versions: BTreeMap<String, u32>,
    pub others: Vec<String>,
}

impl GreetingTally {
    pub fn record(&mut self, body: &str) {
        match parse_greeting(body) {
            Some(g) => *self.versions.entry(g.version).or_default() += 1,
            None if self.others.len() < 3 => self.others.push(shorten(body.trim(), 200)),
            None => {}
        }
    }

    pub fn has_all(&self, versions: &[String]) -> bool {
        versions.iter().all(|v| self.versions.contains_key(v))
    }

    pub fn describe(&self) -> String {
        let seen: Vec<String> = self.versions.iter().map(|(v, n)| format!("{v} x{n}")).collect();
        let mut out = format!("greetings seen: [{}]", seen.join(", "));
        if !self.others.is_empty() {
            out.push_str(&format!("; other answers: {:?}", self.others));
        }
        out
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A minimal `GET` request as sent to the ingress gateway (`Host` is the address).
pub fn http_get_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ecp-harness\r\nConnection: close\r\n\r\n"
    )
}

/// The body of an HTTP/1.x response (status 200 only; chunked bodies are decoded).
pub fn http_response_body(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no complete HTTP response")?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered `{status}`"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunked body")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        rest = after.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

// ---- cluster checks -------------------------------------------------------------

/// The webhook configuration exists with at least `min_webhooks` webhooks.
pub async fn webhook_configuration_exists(
    cluster: &str,
    client: &Client,
    mutating: bool,
    name: &str,
    min_webhooks: u32,
) -> Result<(), CheckFailed> {
    let kind = if mutating { "mutating" } else { "validating" };
    let check =
        format!("{kind} webhook configuration {name} with at least {min_webhooks} webhooks");
    let found = if mutating {
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await
            .map(|w| w.map(|w| w.webhooks.map_or(0, |v| v.len())))
    } else {
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await
            .map(|w| w.map(|w| w.webhooks.map_or(0, |v| v.len())))
    };
    match found {
        Err(e) => Err(failed(cluster, check, format!("reading it failed: {e}"))),
        Ok(None) => Err(failed(cluster, check, "it does not exist")),
        Ok(Some(n)) if count(n) < min_webhooks => {
            Err(failed(cluster, check, format!("it has {n} webhooks")))
        }
        Ok(Some(_)) => Ok(()),
    }
}

/// The ConfigMap exists.
pub async fn config_map_exists(
    cluster: &str,
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), CheckFailed> {
    let check = format!("config map {namespace}/{name}");
    match Api::<ConfigMap>::namespaced(client.clone(), namespace).get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(failed(cluster, check, "it does not exist")),
        Err(e) => Err(failed(cluster, check, format!("reading it failed: {e}"))),
    }
}

/// No webhook configuration of the cluster mentions `text`.
pub async fn webhooks_do_not_mention(
    cluster: &str,
    client: &Client,
    text: &str,
) -> Result<(), CheckFailed> {
    let check = format!("no webhook configuration mentions `{text}`");
    let lp = ListParams::default();
    let read = |e: kube::Error| failed(cluster, &check, format!("listing them failed: {e}"));
    let mutating =
        Api::<MutatingWebhookConfiguration>::all(client.clone()).list(&lp).await.map_err(read)?;
    let validating =
        Api::<ValidatingWebhookConfiguration>::all(client.clone()).list(&lp).await.map_err(read)?;
    let offenders = webhooks_mentioning(&mutating.items, &validating.items, text);
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(failed(cluster, check, format!("mentioned by {}", offenders.join(", "))))
    }
}

/// The `istiod` Service's address object (the version's `object`) points at
/// `address` with ports 15012 and 15017.
pub async fn istiod_address(
    cluster: &str,
    client: &Client,
    namespace: &str,
    object: IstiodAddressObject,
    address: IpAddr,
) -> Result<(), CheckFailed> {
    let check = format!("istiod in {namespace} points at {address}:15012/15017");
    let seen = match object {
        IstiodAddressObject::Endpoints => {
            let api = Api::<Endpoints>::namespaced(client.clone(), namespace);
            match api.get_opt("istiod").await {
                Ok(Some(ep)) if endpoints_point_at(&ep, address) => return Ok(()),
                Ok(Some(_)) => "Endpoints istiod points elsewhere".to_string(),
                Ok(None) => "no Endpoints istiod".to_string(),
                Err(e) => format!("reading Endpoints failed: {e}"),
            }
        }
        IstiodAddressObject::EndpointSlice => {
            let api = Api::<EndpointSlice>::namespaced(client.clone(), namespace);
            let lp = ListParams::default().labels("kubernetes.io/service-name=istiod");
            match api.list(&lp).await {
                Ok(list) if list.items.iter().any(|s| slice_points_at(s, address)) => {
                    return Ok(());
                }
                Ok(list) => {
                    format!("{} EndpointSlices of istiod, none pointing there", list.items.len())
                }
                Err(e) => format!("listing EndpointSlices failed: {e}"),
            }
        }
    };
    Err(failed(cluster, check, seen))
}

/// Pods matching `selector` in `namespace`, newest last.
pub async fn pods(
    cluster: &str,
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Pod>, CheckFailed> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(selector)).await.map(|l| l.items).map_err(|e| {
        failed(cluster, format!("pods {selector} in {namespace}"), format!("listing failed: {e}"))
    })
}

/// Every pod matching `selector` is Running with `containers` ready (and istio-proxy
/// when `sidecar`), and there is at least one.
pub async fn pods_ready(
    cluster: &str,
    client: &Client,
    namespace: &str,
    selector: &str,
    containers: u32,
    sidecar: bool,
) -> Result<(), CheckFailed> {
    let check = format!("pods {selector} in {namespace} are {containers}/{containers} Running");
    let pods = pods(cluster, client, namespace, selector).await?;
    if pods.is_empty() {
        return Err(failed(cluster, check, "no pod matches"));
    }
    let reasons: Vec<String> =
        pods.iter().filter_map(|p| pod_not_ready_reason(p, containers, sidecar)).collect();
    if reasons.is_empty() { Ok(()) } else { Err(failed(cluster, check, reasons.join("; "))) }
}

/// Runs `command` in `container` of pod `pod` and returns its standard output. A
/// non-zero exit status is an error carrying the status and the standard error
/// (curl's `-sS` reason), so a failed request never passes for an empty answer.
pub async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[&str],
) -> Result<String, String> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = AttachParams::default().container(container).stderr(true);
    let run = async {
        let mut process =
            api.exec(pod, command.to_vec(), &params).await.map_err(|e| e.to_string())?;
        let status = process.take_status();
        let (mut out, mut err) = (String::new(), String::new());
        let (stdout, stderr) = (process.stdout(), process.stderr());
        let read_out = async {
            if let Some(mut s) = stdout {
                s.read_to_string(&mut out).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                s.read_to_string(&mut err).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let (o, e) = tokio::join!(read_out, read_err);
        o.and(e).map_err(|e| e.to_string())?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        process.join().await.map_err(|e| e.to_string())?;
        exec_outcome(status.as_ref(), out, &err)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, run)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

/// The outcome of an exec from the status the API server sent at its end: success
/// gives the output; anything else the exit code and standard error. No status at
/// all is an error too (the command's end was not seen).
pub fn exec_outcome(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
    stdout: String,
    stderr: &str,
) -> Result<String, String> {
    let Some(status) = status else {
        return Err(format!("no exit status received; stderr: {}", shorten(stderr.trim(), 300)));
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(stdout);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.iter().flatten().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "?".to_string());
    Err(format!("exit code {code}: {}", shorten(stderr.trim(), 300)))
}

/// One HTTP GET from this process (outside the mesh) to `ip:port`, returning the body.
pub async fn http_get(ip: IpAddr, port: u16, path: &str) -> Result<String, String> {
    let run = async {
        let mut stream =
            tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| e.to_string())?;
        stream
            .write_all(http_get_request(&ip.to_string(), path).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        http_response_body(&raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, run)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

/// How greeting checks retry: as the documentation test's `__verify_with_retry`
/// (istio.io `tests/util/verify.sh`), 7 attempts with exponential back-off, sleeping
/// 2^n s after the n-th failed attempt: 2 + 4 + ... + 64 = 126 s between the first
/// and the last attempt.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    /// The sleep after the first failed attempt; each later one doubles it.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 7, first_delay: Duration::from_secs(2) }
    }
}

impl Retry {
    /// The sleep after each failed attempt but the last.
    pub fn delays(&self) -> Vec<Duration> {
        (0..self.attempts.saturating_sub(1))
            .map(|n| self.first_delay.saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX)))
            .collect()
    }

    /// The time spent sleeping between attempts when every attempt fails.
    pub fn budget(&self) -> Duration {
        self.delays().iter().sum()
    }
}

/// Sends `requests` requests with `get` per attempt until the greetings of every
/// version in `versions` were seen in one attempt, retrying per `retry`.
pub async fn greetings<F, Fut>(
    cluster: &str,
    check: &str,
    versions: &[String],
    requests: u32,
    retry: Retry,
    mut get: F,
) -> Result<GreetingTally, CheckFailed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    if versions.is_empty() {
        return Err(failed(cluster, check, "no expected version given: nothing would be checked"));
    }
    let started = Instant::now();
    let mut last_error = None;
    let mut delays = retry.delays().into_iter();
    // Traffic has no watchable condition: retry with the doc test's back-off.
    let last = loop {
        let mut tally = GreetingTally::default();
        for _ in 0..requests.max(1) {
            match get().await {
                Ok(body) => tally.record(&body),
                Err(e) => last_error = Some(e),
            }
            if tally.has_all(versions) {
                return Ok(tally);
            }
        }
        match delays.next() {
            Some(delay) => tokio::time::sleep(delay).await,
            None => break tally,
        }
    };
    let mut detail = format!("after {:?}: {}", started.elapsed(), last.describe());
    if let Some(e) = last_error {
        detail.push_str(&format!("; last error: {e}"));
    }
    Err(failed(cluster, format!("{check} answers {}", versions.join(" and ")), detail))
}

/// From a running pod matching `selector`, `curl -sS <url>` answers the greeting of
/// every version in `versions` within `requests` requests (retried per `retry`).
#[allow(clippy::too_many_arguments)]
pub async fn exec_greeting(
    cluster: &str,
    client: &Client,
    namespace: &str,
    selector: &str,
    container: &str,
    url: &str,
    versions: &[String],
    requests: u32,
    retry: Retry,
) -> Result<GreetingTally, CheckFailed> {
    let check = format!("curl {url} from {selector} in {namespace}");
    let pods = pods(cluster, client, namespace, selector).await?;
    let running = pods.iter().find(|p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            && p.metadata.deletion_timestamp.is_none()
    });
    let Some(pod) = running.and_then(|p| p.metadata.name.clone()) else {
        return Err(failed(cluster, check, "no running pod matches"));
    };
    greetings(cluster, &check, versions, requests, retry, || {
        let pod = pod.clone();
        async move { exec(client, namespace, &pod, container, &["curl", "-sS", url]).await }
    })
    .await
}

/// Through the LoadBalancer IP of `service`, `GET http://<ip>:<port><path>` answers
/// the greeting of every version in `versions` within `requests` requests.
#[allow(clippy::too_many_arguments)]
pub async fn ingress_greeting(
    cluster: &str,
    client: &Client,
    namespace: &str,
    service: &str,
    port: u16,
    path: &str,
    versions: &[String],
    requests: u32,
    retry: Retry,
) -> Result<GreetingTally, CheckFailed> {
    let check = format!("http://<{namespace}/{service}>:{port}{path}");
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(service)
        .await
        .map_err(|e| failed(cluster, &check, format!("reading the service failed: {e}")))?
        .ok_or_else(|| failed(cluster, &check, "the service does not exist"))?;
    let ip = load_balancer_ip(&svc)
        .ok_or_else(|| failed(cluster, &check, "the service has no LoadBalancer IP"))?;
    let check = format!("http://{ip}:{port}{path}");
    greetings(cluster, &check, versions, requests, retry, || http_get(ip, port, path)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn greetings_parse() {
        assert_eq!(
            parse_greeting("Hello version: v1, instance: helloworld-v1-776f57d5f6-s7zfc\n"),
            Some(Greeting {
                version: "v1".into(),
                instance: "helloworld-v1-776f57d5f6-s7zfc".into()
            })
        );
        assert_eq!(parse_greeting("Hello version: v2, instance: x").unwrap().version, "v2");
        assert_eq!(parse_greeting("upstream connect error or disconnect/reset"), None);
        assert_eq!(parse_greeting("Hello version: , instance: x"), None);
        assert_eq!(parse_greeting("Hello version: v1, instance: "), None);
        assert_eq!(parse_greeting("no healthy upstream"), None);
    }

    /// A pod as a 1.26 injector renders it: istio-proxy in `spec.containers`.
    fn pod_1_26(ready: [bool; 2], phase: &str) -> Pod {
        pod(json!({
            "metadata": {"name": "helloworld-v1-abc"},
            "spec": {
                "initContainers": [{"name": "istio-init", "image": "proxyv2"}],
                "containers": [
                    {"name": "helloworld", "image": "hw"},
                    {"name": "istio-proxy", "image": "proxyv2"}
                ]
            },
            "status": {
                "phase": phase,
                "initContainerStatuses": [{"name": "istio-init", "ready": false, "restartCount": 0, "image": "", "imageID": ""}],
                "containerStatuses": [
                    {"name": "helloworld", "ready": ready[0], "restartCount": 0, "image": "", "imageID": ""},
                    {"name": "istio-proxy", "ready": ready[1], "restartCount": 0, "image": "", "imageID": ""}
                ]
            }
        }))
    }

    /// A pod as a 1.27 injector renders it on 1.33+ kubelets: native sidecar.
    fn pod_1_27(proxy_ready: bool) -> Pod {
        pod(json!({
            "metadata": {"name": "helloworld-v1-def"},
            "spec": {
                "initContainers": [
                    {"name": "istio-init", "image": "proxyv2"},
                    {"name": "istio-proxy", "image": "proxyv2", "restartPolicy": "Always"}
                ],
                "containers": [{"name": "helloworld", "image": "hw"}]
            },
            "status": {
                "phase": "Running",
                "initContainerStatuses": [
                    {"name": "istio-init", "ready": false, "restartCount": 0, "image": "", "imageID": ""},
                    {"name": "istio-proxy", "ready": proxy_ready, "restartCount": 0, "image": "", "imageID": ""}
                ],
                "containerStatuses": [
                    {"name": "helloworld", "ready": true, "restartCount": 0, "image": "", "imageID": ""}
                ]
            }
        }))
    }

    #[test]
    fn sidecar_found_in_containers_or_as_native_sidecar() {
        assert_eq!(
            sidecar_placement(&pod_1_26([true; 2], "Running")),
            Some(SidecarPlacement::Container)
        );
        assert_eq!(sidecar_placement(&pod_1_27(true)), Some(SidecarPlacement::NativeInit));
        let plain =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}));
        assert_eq!(sidecar_placement(&plain), None);
        // An init container named istio-proxy without restartPolicy Always is no sidecar.
        let init_only = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app"}],
            "initContainers": [{"name": "istio-proxy"}]
        }}));
        assert_eq!(sidecar_placement(&init_only), None);
    }

    #[test]
    fn ready_counts_match_kubectl_for_both_shapes() {
        assert_eq!(ready_containers(&pod_1_26([true, true], "Running")), (2, 2));
        assert_eq!(ready_containers(&pod_1_26([true, false], "Running")), (1, 2));
        assert_eq!(ready_containers(&pod_1_27(true)), (2, 2));
        assert_eq!(ready_containers(&pod_1_27(false)), (1, 2));
    }

    #[test]
    fn not_ready_reasons_name_the_pod_and_what_is_wrong() {
        assert_eq!(pod_not_ready_reason(&pod_1_26([true; 2], "Running"), 2, true), None);
        assert_eq!(pod_not_ready_reason(&pod_1_27(true), 2, true), None);
        let pending = pod_not_ready_reason(&pod_1_26([false; 2], "Pending"), 2, true).unwrap();
        assert_eq!(pending, "pod helloworld-v1-abc is Pending");
        let half = pod_not_ready_reason(&pod_1_27(false), 2, true).unwrap();
        assert!(half.contains("1/2, expected 2/2"), "{half}");
        let plain = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "image": "", "imageID": ""},
                {"name": "b", "ready": true, "restartCount": 0, "image": "", "imageID": ""}]}}));
        assert!(pod_not_ready_reason(&plain, 2, true).unwrap().contains("no istio-proxy"));
        assert_eq!(pod_not_ready_reason(&plain, 2, false), None);
    }

    #[test]
    fn webhook_mentions_are_found_by_name() {
        let clean: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "istio-sidecar-injector"},
            "webhooks": [{"name": "a.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}}}]
        }))
        .unwrap();
        let bad: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": "istio-validator-external-istiod"},
            "webhooks": [{"name": "v.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"name": "istiod", "namespace": "external-istiod"}}}]
        }))
        .unwrap();
        assert!(
            webhooks_mentioning(std::slice::from_ref(&clean), &[], "external-istiod").is_empty()
        );
        assert_eq!(
            webhooks_mentioning(&[clean], &[bad], "external-istiod"),
            ["validating istio-validator-external-istiod"]
        );
    }

    #[test]
    fn istiod_address_objects_are_read() {
        let addr: IpAddr = "172.18.6.66".parse().unwrap();
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "istiod"},
            "subsets": [{"addresses": [{"ip": "172.18.6.66"}],
                "ports": [{"name": "tcp-istiod", "port": 15012}, {"name": "tcp-webhook", "port": 15017}]}]
        }))
        .unwrap();
        assert!(endpoints_point_at(&ep, addr));
        assert!(!endpoints_point_at(&ep, "172.18.6.67".parse().unwrap()));
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "istiod-x"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["172.18.6.66"]}],
            "ports": [{"port": 15012}]
        }))
        .unwrap();
        assert!(!slice_points_at(&slice, addr), "15017 is missing");
        let mut full = slice.clone();
        full.ports.as_mut().unwrap().push(serde_json::from_value(json!({"port": 15017})).unwrap());
        assert!(slice_points_at(&full, addr));
    }

    #[test]
    fn load_balancer_ips_are_read() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "istio-ingressgateway"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.6.116"}]}}
        }))
        .unwrap();
        assert_eq!(load_balancer_ip(&svc), Some("172.18.6.116".parse().unwrap()));
        let pending: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "status": {}})).unwrap();
        assert_eq!(load_balancer_ip(&pending), None);
    }

    #[test]
    fn http_bodies_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(http_response_body(plain).unwrap(), "hello");
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nHello \r\n3\r\nv1!\r\n0\r\n\r\n";
        assert_eq!(http_response_body(chunked).unwrap(), "Hello v1!");
        let err =
            http_response_body(b"HTTP/1.1 503 Service Unavailable\r\n\r\nno healthy upstream")
                .unwrap_err();
        assert!(err.contains("503"), "{err}");
        assert_eq!(
            http_get_request("172.18.6.116", "/hello"),
            "GET /hello HTTP/1.1\r\nHost: 172.18.6.116\r\nUser-Agent: ecp-harness\r\nConnection: close\r\n\r\n"
        );
    }

    fn versions(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn greetings_stop_as_soon_as_every_version_was_seen() {
        let answers = ["Hello version: v1, instance: a", "Hello version: v2, instance: b"];
        let mut n = 0;
        let retry = Retry { attempts: 7, first_delay: Duration::from_millis(1) };
        let tally = greetings("config", "x", &versions(&["v1", "v2"]), 10, retry, || {
            let body = answers[n % 2].to_string();
            n += 1;
            async move { Ok(body) }
        })
        .await
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(tally.versions.len(), 2);
    }

    #[tokio::test]
    async fn missing_versions_fail_with_what_was_seen() {
        let mut calls = 0;
        let retry = Retry { attempts: 3, first_delay: Duration::from_millis(1) };
        let err = greetings("config", "ingress", &versions(&["v1", "v2"]), 10, retry, || {
            calls += 1;
            async move {
                if calls % 5 == 0 {
                    Err("connection refused".to_string())
                } else {
                    Ok("Hello version: v1, instance: a".to_string())
                }
            }
        })
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cluster config: ingress answers v1 and v2"), "{msg}");
        assert!(msg.contains("v1 x"), "{msg}");
        assert!(msg.contains("connection refused"), "{msg}");
        assert_eq!(calls, 30, "three attempts of 10 requests each, no more");
    }

    #[test]
    fn exec_outcomes_carry_exit_code_and_stderr() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
        let ok: Status =
            serde_json::from_value(json!({"status": "Success", "metadata": {}})).unwrap();
        assert_eq!(exec_outcome(Some(&ok), "Hello".into(), ""), Ok("Hello".to_string()));
        let failed: Status = serde_json::from_value(json!({
            "status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
            "details": {"causes": [{"reason": "ExitCode", "message": "56"}]}
        }))
        .unwrap();
        let err = exec_outcome(
            Some(&failed),
            String::new(),
            "curl: (56) Recv failure: Connection reset by peer\n",
        )
        .unwrap_err();
        assert_eq!(err, "exit code 56: curl: (56) Recv failure: Connection reset by peer");
        let err = exec_outcome(None, "partial".into(), "").unwrap_err();
        assert!(err.starts_with("no exit status"), "{err}");
    }

    #[test]
    fn the_retry_budget_is_the_doc_tests_exponential_back_off() {
        let retry = Retry::default();
        let secs: Vec<u64> = retry.delays().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64]);
        assert_eq!(retry.budget(), Duration::from_secs(126));
        assert!(Retry { attempts: 1, first_delay: Duration::from_secs(2) }.delays().is_empty());
        assert!(Retry { attempts: 0, first_delay: Duration::from_secs(2) }.delays().is_empty());
    }

    #[tokio::test]
    async fn an_empty_list_of_versions_is_refused_before_any_request() {
        let mut calls = 0;
        let err = greetings("config", "x", &[], 1, Retry::default(), || {
            calls += 1;
            async { Ok("Hello version: v1, instance: a".to_string()) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 0);
        assert!(err.to_string().contains("no expected version given"), "{err}");
    }
}

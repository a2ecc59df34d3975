//! Server-side apply of multi-document YAML, the way `kubectl apply --server-side
//! --force-conflicts` does it: CustomResourceDefinitions first, waited until
//! Established, then Namespaces, then everything else in document order; each kind's
//! resource and scope resolved by discovery. The report says, per object, whether the
//! apply created, changed or left it unchanged (resourceVersion before and after).

use std::fmt;
use std::time::{Duration, Instant};

use ::kube::Client;
use ::kube::api::{Api, DynamicObject, Patch, PatchParams};
use ::kube::discovery::{Discovery, Scope};
use ::kube::runtime::wait::conditions;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use tracing::Instrument as _;

use super::wait::{self, WaitError};
use super::{DiscoveryError, discover, group_version, idempotent, resolve};

/// How long each CRD may take to become Established, at most (the overall deadline
/// of the apply still applies).
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);
/// Discovery of a freshly established CRD's group is retried this often, this far apart.
const DISCOVERY_RETRIES: u32 = 20;
const DISCOVERY_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Who applies, where, and how long it may take.
#[derive(Debug, Clone)]
pub struct ApplyOptions<'a> {
    /// The cluster's name, for messages.
    pub cluster: &'a str,
    /// The server-side apply field manager.
    pub field_manager: &'a str,
    /// Namespace for namespaced objects that name none (`kubectl -n`); `None` means the
    /// client's default namespace.
    pub namespace: Option<&'a str>,
    /// Deadline for the whole apply, CRD waits included.
    pub timeout: Duration,
}

impl<'a> ApplyOptions<'a> {
    pub fn new(cluster: &'a str, field_manager: &'a str) -> Self {
        ApplyOptions { cluster, field_manager, namespace: None, timeout: Duration::from_secs(120) }
    }

    pub fn namespace(mut self, namespace: &'a str) -> Self {
        self.namespace = Some(namespace);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What an apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Changed,
    Unchanged,
}

/// One applied object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub outcome: Outcome,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {:?}",
            self.kind,
            object_ref(self.namespace.as_deref(), &self.name),
            self.outcome
        )
    }
}

/// Every object an apply touched, in the order applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub objects: Vec<Applied>,
}

impl ApplyReport {
    /// Objects the apply created or changed.
    pub fn modified(&self) -> impl Iterator<Item = &Applied> {
        self.objects.iter().filter(|o| o.outcome != Outcome::Unchanged)
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.objects.iter().filter(|o| o.outcome == outcome).count()
    }
}

/// Where in a file a document is: its position among the file's objects (from 1) and
/// the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRef {
    pub file: String,
    pub index: usize,
    pub line: usize,
}

impl fmt::Display for DocRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {} (line {})", self.file, self.index, self.line)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{doc}: not valid YAML: {message}")]
    Parse { doc: DocRef, message: String },
    #[error("{doc}: not a Kubernetes object: {message}")]
    Malformed { doc: DocRef, message: String },
    #[error("{target}: {api_version} {} is not served by the cluster (too old a Kubernetes, or a missing CRD)", target.kind)]
    NotServed { target: Box<Target>, api_version: String },
    #[error("{target}: the cluster refused it: {reason} (HTTP {code}): {message}")]
    Rejected { target: Box<Target>, reason: String, code: u16, message: String },
    #[error("{target}: the request failed: {}", super::error_chain(error))]
    Request {
        target: Box<Target>,
        #[source]
        error: ::kube::Error,
    },
    #[error("{file}: cluster {cluster}: {error}")]
    Discovery {
        file: String,
        cluster: String,
        #[source]
        error: DiscoveryError,
    },
    #[error("{doc}: the CRD did not become Established: {error}")]
    CrdNotEstablished {
        doc: DocRef,
        #[source]
        error: Box<WaitError>,
    },
    #[error("{file}: applying to cluster {cluster} took longer than {timeout:.1?}; it was {step}")]
    Timeout { file: String, cluster: String, timeout: Duration, step: String },
}

/// The object an apply error is about: document, kind, name (`namespace/name` for
/// namespaced objects) and cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub doc: DocRef,
    pub kind: String,
    pub name: String,
    pub cluster: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {} on cluster {})", self.doc, self.kind, self.name, self.cluster)
    }
}

/// One parsed document.
#[derive(Debug, Clone)]
struct Doc {
    at: DocRef,
    object: DynamicObject,
}

impl Doc {
    fn api_version(&self) -> &str {
        self.object.types.as_ref().map(|t| t.api_version.as_str()).unwrap_or_default()
    }

    fn kind(&self) -> &str {
        self.object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    fn is_crd(&self) -> bool {
        self.kind() == "CustomResourceDefinition"
            && group_version(self.api_version()).0 == "apiextensions.k8s.io"
    }

    /// CRDs, then Namespaces, then the rest.
    fn phase(&self) -> u8 {
        match (self.is_crd(), self.kind() == "Namespace" && self.api_version() == "v1") {
            (true, _) => 0,
            (false, true) => 1,
            _ => 2,
        }
    }
}

/// Applies every object of a multi-document YAML text. `file` names the text in errors.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    file: &str,
    opts: &ApplyOptions<'_>,
) -> Result<ApplyReport, ApplyError> {
    let mut docs = parse(yaml, file)?;
    docs.sort_by_key(Doc::phase); // stable: document order within a phase

    let mut step = String::from("starting");
    let span = tracing::info_span!("apply", cluster = opts.cluster, file);
    let run = apply_docs(client, &docs, file, opts, &mut step).instrument(span);
    let outcome = tokio::time::timeout(opts.timeout, run).await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err(ApplyError::Timeout {
            file: file.to_string(),
            cluster: opts.cluster.to_string(),
            timeout: opts.timeout,
            step,
        }),
    }
}

async fn apply_docs(
    client: &Client,
    docs: &[Doc],
    file: &str,
    opts: &ApplyOptions<'_>,
    step: &mut String,
) -> Result<ApplyReport, ApplyError> {
    let started = Instant::now();
    let discovery_error = |error| ApplyError::Discovery {
        file: file.to_string(),
        cluster: opts.cluster.to_string(),
        error,
    };

    *step = "discovering the API".to_string();
    let mut discovery = discover(client, opts.timeout).await.map_err(discovery_error)?;
    let mut report = ApplyReport::default();

    let crds: Vec<&Doc> = docs.iter().filter(|d| d.is_crd()).collect();
    for doc in &crds {
        report.objects.push(apply_one(client, &discovery, doc, opts, step).await?);
    }
    if !crds.is_empty() {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for doc in &crds {
            *step = format!("waiting for CRD {} to become Established", doc.name());
            let what = format!("CRD {} Established", doc.name());
            wait::until(
                opts.cluster,
                &api,
                doc.name(),
                &what,
                conditions::is_crd_established(),
                CRD_ESTABLISHED_TIMEOUT.min(opts.timeout),
            )
            .await
            .map_err(|error| ApplyError::CrdNotEstablished {
                doc: doc.at.clone(),
                error: Box::new(error),
            })?;
        }
        *step = "discovering the API again after the CRDs".to_string();
        let groups: Vec<String> = crds.iter().filter_map(|d| crd_group(&d.object)).collect();
        discovery = rediscover(client, opts.timeout, &groups).await.map_err(discovery_error)?;
    }

    for doc in docs.iter().filter(|d| !d.is_crd()) {
        report.objects.push(apply_one(client, &discovery, doc, opts, step).await?);
    }
    tracing::info!(
        objects = report.objects.len(),
        created = report.count(Outcome::Created),
        changed = report.count(Outcome::Changed),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "applied"
    );
    Ok(report)
}

/// Runs discovery until every group of the freshly established CRDs is served.
/// Discovery has nothing to watch, so this polls, bounded in count.
async fn rediscover(
    client: &Client,
    timeout: Duration,
    groups: &[String],
) -> Result<Discovery, DiscoveryError> {
    let mut attempt = 0;
    loop {
        let discovery = discover(client, timeout).await?;
        attempt += 1;
        let missing = groups.iter().any(|g| !discovery.has_group(g));
        if !missing || attempt >= DISCOVERY_RETRIES {
            return Ok(discovery);
        }
        tokio::time::sleep(DISCOVERY_RETRY_PAUSE).await;
    }
}

fn crd_group(crd: &DynamicObject) -> Option<String> {
    crd.data.get("spec")?.get("group")?.as_str().map(str::to_string)
}

async fn apply_one(
    client: &Client,
    discovery: &Discovery,
    doc: &Doc,
    opts: &ApplyOptions<'_>,
    step: &mut String,
) -> Result<Applied, ApplyError> {
    let (kind, name) = (doc.kind().to_string(), doc.name().to_string());
    let target = |name: String| {
        Box::new(Target {
            doc: doc.at.clone(),
            kind: kind.clone(),
            name,
            cluster: opts.cluster.to_string(),
        })
    };
    let Some((resource, caps)) = resolve(discovery, doc.api_version(), &kind) else {
        return Err(ApplyError::NotServed {
            target: target(name),
            api_version: doc.api_version().to_string(),
        });
    };
    let mut object = doc.object.clone();
    let namespace = match caps.scope {
        Scope::Cluster => {
            object.metadata.namespace = None;
            None
        }
        Scope::Namespaced => Some(
            object
                .metadata
                .namespace
                .get_or_insert_with(|| {
                    opts.namespace.unwrap_or_else(|| client.default_namespace()).to_string()
                })
                .clone(),
        ),
    };
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    *step = format!("applying {} ({kind} {})", doc.at, object_ref(namespace.as_deref(), &name));
    let request_error = |error: ::kube::Error| match error {
        ::kube::Error::Api(status) => ApplyError::Rejected {
            target: target(object_ref(namespace.as_deref(), &name)),
            reason: status.reason.clone(),
            code: status.code,
            message: status.message.clone(),
        },
        error => {
            ApplyError::Request { target: target(object_ref(namespace.as_deref(), &name)), error }
        }
    };

    let before = idempotent(|| api.get_opt(&name)).await.map_err(request_error)?;
    let params = PatchParams::apply(opts.field_manager).force();
    let patch = Patch::Apply(&object);
    let after = idempotent(|| api.patch(&name, &params, &patch)).await.map_err(request_error)?;
    let outcome = match before {
        None => Outcome::Created,
        Some(before) if same_content(&before, &after) => Outcome::Unchanged,
        Some(_) => Outcome::Changed,
    };
    let applied =
        Applied { api_version: doc.api_version().to_string(), kind, namespace, name, outcome };
    tracing::debug!(object = %applied, "applied");
    Ok(applied)
}

/// Whether an apply left an object's content as it was. The same resourceVersion
/// settles it; otherwise the objects are compared without resourceVersion and
/// managedFields: a 1.20 API server, re-applying a Namespace created by an apply,
/// only records the "before-first-apply" managed fields it had left out.
fn same_content(before: &DynamicObject, after: &DynamicObject) -> bool {
    if before.metadata.resource_version == after.metadata.resource_version {
        return true;
    }
    let content = |o: &DynamicObject| {
        let mut o = o.clone();
        o.metadata.resource_version = None;
        o.metadata.managed_fields = None;
        serde_json::to_value(o).ok()
    };
    let (b, a) = (content(before), content(after));
    b.is_some() && b == a
}

fn object_ref(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Splits a multi-document YAML text at its `---` lines and parses each document.
/// Empty documents (only comments or nothing) are skipped and not counted.
fn parse(yaml: &str, file: &str) -> Result<Vec<Doc>, ApplyError> {
    let mut docs = Vec::new();
    for (line, text) in split_documents(yaml) {
        let at = DocRef { file: file.to_string(), index: docs.len() + 1, line };
        let value: Value = crate::yaml::from_str(text)
            .map_err(|e| ApplyError::Parse { doc: at.clone(), message: e.to_string() })?;
        if value.is_null() {
            continue;
        }
        let object = to_object(value)
            .map_err(|message| ApplyError::Malformed { doc: at.clone(), message })?;
        docs.push(Doc { at, object });
    }
    Ok(docs)
}

/// The documents of a YAML stream with the line (from 1) each one's text starts on.
/// A line `---` (optionally followed by a space and more) starts a document; a line
/// `...` ends one.
fn split_documents(yaml: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0; // byte offset of the current document's text
    let mut start_line = 1;
    let mut offset = 0;
    for (number, line) in yaml.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let separator = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let end = bare == "...";
        if separator || end {
            docs.push((start_line, &yaml[start..offset]));
            if separator && !bare[3..].trim().is_empty() {
                // `--- {...}`: the document's text begins on the marker's line.
                start = offset + 3;
                start_line = number + 1;
            } else {
                start = offset + line.len();
                start_line = number + 2;
            }
        }
        offset += line.len();
    }
    docs.push((start_line, &yaml[start..]));
    docs
}

/// Checks the fields every object needs and converts it.
fn to_object(value: Value) -> Result<DynamicObject, String> {
    let Value::Object(map) = &value else {
        return Err(format!("expected a mapping, found {}", type_name(&value)));
    };
    for field in ["apiVersion", "kind"] {
        match map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(format!("`{field}` is missing or not a string")),
        }
    }
    match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("`metadata.name` is missing or not a string".to_string()),
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# only a comment\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: foos.example.com\nspec:\n  group: example.com\n--- \napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n...\n";

    #[test]
    fn splits_documents_with_their_lines() {
        let docs = parse(THREE, "three.yaml").unwrap();
        let found: Vec<(usize, usize, &str)> =
            docs.iter().map(|d| (d.at.index, d.at.line, d.name())).collect();
        assert_eq!(found, [(1, 3, "a"), (2, 10, "foos.example.com"), (3, 17, "ns1")]);
    }

    #[test]
    fn orders_crds_then_namespaces_then_the_rest() {
        let mut docs = parse(THREE, "three.yaml").unwrap();
        docs.sort_by_key(Doc::phase);
        let kinds: Vec<&str> = docs.iter().map(Doc::kind).collect();
        assert_eq!(kinds, ["CustomResourceDefinition", "Namespace", "ConfigMap"]);
        assert_eq!(crd_group(&docs[0].object).as_deref(), Some("example.com"));
    }

    #[test]
    fn document_without_separator_is_one_document() {
        let docs = parse("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "s.yaml").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].at.line, 1);
    }

    #[test]
    fn block_scalars_keep_indented_separators() {
        let yaml =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  f: |\n    ---\n    x\n";
        let docs = parse(yaml, "c.yaml").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].object.data["data"]["f"], "---\nx\n");
    }

    #[test]
    fn a_yaml_error_does_not_quote_the_document() {
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n\
                    stringData: {token: hunter2-secret-value, bad: [unclosed}\n";
        let err = parse(yaml, "secret.yaml").unwrap_err().to_string();
        assert!(err.starts_with("secret.yaml: document 1 (line 1): not valid YAML"), "{err}");
        assert!(!err.contains("hunter2"), "the error quotes the source: {err}");
    }

    #[test]
    fn names_the_document_of_a_yaml_error() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: [unclosed\n";
        let err = parse(yaml, "bad.yaml").unwrap_err();
        assert!(
            matches!(&err, ApplyError::Parse { doc, .. } if doc.index == 2 && doc.line == 5),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("bad.yaml: document 2 (line 5): not valid YAML"),
            "{err}"
        );
    }

    #[test]
    fn names_what_an_object_lacks() {
        let err = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "m.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.yaml: document 1 (line 1): not a Kubernetes object: `metadata.name` is missing or not a string"
        );
        let err = parse("- a\n- b\n", "l.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "l.yaml: document 1 (line 1): not a Kubernetes object: expected a mapping, found a sequence"
        );
    }

    #[test]
    fn content_ignores_resource_version_and_managed_fields_only() {
        let object = |rv: &str, managed: bool, mode: &str| -> DynamicObject {
            let mut o: DynamicObject = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "resourceVersion": rv},
                "data": {"mode": mode}
            }))
            .unwrap();
            if managed {
                o.metadata.managed_fields = Some(vec![Default::default()]);
            }
            o
        };
        assert!(same_content(&object("1", false, "a"), &object("1", false, "a")));
        assert!(same_content(&object("1", false, "a"), &object("2", true, "a")));
        assert!(!same_content(&object("1", false, "a"), &object("2", false, "b")));
    }

    #[test]
    fn report_counts_outcomes() {
        let applied = |name: &str, outcome| Applied {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
            outcome,
        };
        let report = ApplyReport {
            objects: vec![applied("a", Outcome::Created), applied("b", Outcome::Unchanged)],
        };
        assert_eq!(report.count(Outcome::Created), 1);
        assert_eq!(
            report.modified().map(|o| o.to_string()).collect::<Vec<_>>(),
            ["ConfigMap ns/a: Created"]
        );
    }
}

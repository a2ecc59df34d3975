//! A plan for people (`render_text`), for programs (`to_json`) and on disk (`write`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::plan::{Action, Check, PLAN_JSON, Plan, PlanError, PlanFile, WaitCondition};
use crate::topology::ClusterSpec;

impl PlanFile {
    /// A public file of YAML `docs` (one document each) at `path`; `step` names the
    /// step in the error.
    pub(super) fn yaml(
        step: &str,
        path: String,
        docs: &[serde_json::Value],
    ) -> Result<Self, PlanError> {
        let contents = serde_saphyr::to_string_multiple(docs).map_err(|e| PlanError::Render {
            step: step.to_string(),
            file: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self { path, contents, private: false })
    }
}

impl Plan {
    /// The ordered plan as text: one block per step (number, cluster, title), one
    /// line per action. File contents are not printed (they may hold keys).
    pub fn render_text(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Install plan: Istio {} with {}, {} remote(s) ({}), gateway TLS {}, external address {}",
            o.istio,
            kebab(&o.installer),
            o.remotes,
            kebab(&o.network_mode),
            kebab(&o.gateway_tls),
            o.external_addr,
        );
        if o.meshes > 1 {
            let _ = writeln!(
                out,
                "Meshes: {} on the one external cluster, each with its own remote(s)",
                o.meshes
            );
        }
        if let Some(notice) = o.istio.notice() {
            let _ = writeln!(out, "Note: {notice}");
        }
        let overrides = o.overrides();
        if !overrides.is_empty() {
            let _ = writeln!(out, "Overrides:");
            for (name, value) in overrides {
                let _ = writeln!(out, "  {name}: {value}");
            }
        }
        if o.installer == super::Installer::Sail {
            let _ = writeln!(out, "{}", sail_line(o));
        }
        let _ = writeln!(out, "Clusters:");
        // Columns as wide as their longest entry (a later mesh's `mesh2-config`), at
        // least as wide as one mesh's names need.
        let clusters = &self.topology.clusters;
        let width = |at_least: usize, f: fn(&ClusterSpec) -> &str| {
            clusters.iter().map(|c| f(c).len()).fold(at_least, usize::max)
        };
        let name_w = width(9, |c| &c.name);
        let id_w = width(9, |c| &c.cluster_id);
        let network_w = width(9, |c| c.network.as_deref().unwrap_or("-"));
        for c in clusters {
            let network = c.network.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "  {:<name_w$} {:<8} cluster ID {:<id_w$} network {:<network_w$} pods {} services {}",
                c.name,
                kebab(&c.role),
                c.cluster_id,
                network,
                c.pod_subnet,
                c.service_subnet,
            );
        }
        if self.topology.meshes > 1 {
            out.push_str(&self.routing_table());
        }
        for step in &self.steps {
            let _ = writeln!(out);
            let _ =
                writeln!(out, "{}. [{}] {} ({})", step.number, step.cluster, step.title, step.id);
            for action in &step.actions {
                let _ = writeln!(out, "   - {}", describe(action));
            }
        }
        out
    }

    /// How the control-plane gateway keeps the meshes apart: one line per mesh with
    /// its mesh ID, its xDS/CA and webhook ports on the gateway, the namespace of its
    /// istiod and its config cluster (procedure.md "Several meshes on one external
    /// cluster").
    pub fn routing_table(&self) -> String {
        let mut out =
            String::from("Routing (control-plane gateway istio-system/istio-ingressgateway):\n");
        let _ = writeln!(
            out,
            "  {:<6} {:<9} {:<12} {:<22} config cluster (ID)",
            "mesh", "xds/ca", "webhooks", "istiod namespace"
        );
        for mesh in self.topology.mesh_list() {
            let config = self.topology.config_of(mesh);
            let _ = writeln!(
                out,
                "  {:<6} {:<9} {:<12} {:<22} {} ({})",
                mesh.id(),
                mesh.xds_port(),
                format!("{} -> 443", mesh.webhook_port()),
                mesh.namespace(),
                config.map(|c| c.name.as_str()).unwrap_or("-"),
                config.map(|c| c.cluster_id.as_str()).unwrap_or("-"),
            );
        }
        out
    }

    /// The plan as pretty JSON (options, topology, steps; file contents omitted:
    /// the files are written beside it).
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct PlanJson<'a> {
            options: &'a super::plan::PlanOptions,
            topology: &'a crate::topology::Topology,
            steps: &'a [super::plan::Step],
            files: Vec<FileJson<'a>>,
        }
        #[derive(serde::Serialize)]
        struct FileJson<'a> {
            path: &'a str,
            private: bool,
        }
        let json = PlanJson {
            options: &self.options,
            topology: &self.topology,
            steps: &self.steps,
            files: self
                .files
                .iter()
                .map(|f| FileJson { path: &f.path, private: f.private })
                .collect(),
        };
        // Serializing plain data into a String cannot fail.
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Writes every plan file under `dir` (private ones with mode 0600, replacing
    /// what was there) and `plan.json`. Returns the paths written, `plan.json` last.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, PlanError> {
        let fail = |error| PlanError::Write { dir: dir.to_path_buf(), error };
        fs::create_dir_all(dir).map_err(fail)?;
        let mut written = Vec::with_capacity(self.files.len() + 1);
        for file in &self.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(fail)?;
            }
            let mode = if file.private { 0o600 } else { 0o644 };
            crate::files::write_new(&path, file.contents.as_bytes(), mode).map_err(fail)?;
            written.push(path);
        }
        if self.topology.meshes > 1 {
            let path = dir.join(ROUTING_TABLE);
            crate::files::write_new(&path, self.routing_table().as_bytes(), 0o644).map_err(fail)?;
            written.push(path);
        }
        let json = dir.join(PLAN_JSON);
        crate::files::write_new(&json, self.to_json().as_bytes(), 0o644).map_err(fail)?;
        written.push(json);
        Ok(written)
    }

    /// Replaces every private file written under `dir` (keys, credential templates)
    /// with a line saying it was removed, once the run no longer needs it: a plan
    /// kept in a report (which CI uploads) must hold no private key. Files that were
    /// never written are left alone. Returns the paths replaced.
    pub fn remove_private_files(&self, dir: &Path) -> Result<Vec<PathBuf>, PlanError> {
        let fail = |error| PlanError::Write { dir: dir.to_path_buf(), error };
        let mut replaced = Vec::new();
        for file in self.files.iter().filter(|f| f.private) {
            let path = dir.join(&file.path);
            if path.exists() {
                crate::files::write_new(&path, REMOVED_PRIVATE_FILE.as_bytes(), 0o600)
                    .map_err(fail)?;
                replaced.push(path);
            }
        }
        Ok(replaced)
    }
}

/// The routing table's file beside `plan.json`, written for several meshes.
pub const ROUTING_TABLE: &str = "routing.txt";

/// What a private plan file holds once [`Plan::remove_private_files`] has run.
pub const REMOVED_PRIVATE_FILE: &str =
    "# removed after the run: this file held a private key or credential of the run\n";

/// The serde (kebab-case) name of a unit enum value.
fn kebab<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// One line for an action.
fn describe(action: &Action) -> String {
    match action {
        Action::CreateNamespace { name, labels, annotations } => {
            let mut s = format!("create namespace {name}");
            for (k, v) in labels {
                let _ = write!(s, ", label {k}={v}");
            }
            for (k, v) in annotations {
                let _ = write!(s, ", annotation {k}={v}");
            }
            s
        }
        Action::Apply { file, namespace } => format!("apply {file}{}", in_namespace(namespace)),
        Action::Run { program, args, stdout_file } => {
            let mut s = format!("run {}", program.as_str());
            for a in args {
                s.push(' ');
                s.push_str(a);
            }
            if let Some(f) = stdout_file {
                let _ = write!(s, " > {f}");
            }
            s
        }
        Action::CreateRemoteSecret {
            source_cluster,
            target_cluster,
            cluster_id,
            secret_type,
            service_account,
            namespace,
            token_file,
            file,
        } => format!(
            "create remote secret (type {}) for {source_cluster} (cluster ID {cluster_id}) \
             from service account {namespace}/{service_account} ({token_file}), \
             apply {file} in {target_cluster}",
            kebab(secret_type)
        ),
        Action::WaitFor { condition, timeout_secs } => {
            format!("wait up to {timeout_secs}s for {}", describe_wait(condition))
        }
        Action::Verify { check } => format!("verify {}", describe_check(check)),
        Action::Delete { file, namespace } => {
            format!("delete the objects of {file}{}", in_namespace(namespace))
        }
        Action::DeleteNamespace { name } => format!("delete namespace {name}"),
    }
}

fn in_namespace(namespace: &Option<String>) -> String {
    namespace.as_ref().map(|n| format!(" (namespace {n})")).unwrap_or_default()
}

fn describe_wait(c: &WaitCondition) -> String {
    match c {
        WaitCondition::LoadBalancerIp { namespace, service } => {
            format!("a LoadBalancer IP on service {namespace}/{service}")
        }
        WaitCondition::DeploymentAvailable { namespace, name } => {
            format!("deployment {namespace}/{name} to be Available")
        }
        WaitCondition::PodsReady { namespace, selector, containers, sidecar } => format!(
            "pods {selector} in {namespace} to be Running {containers}/{containers}{}",
            if *sidecar { " with istio-proxy" } else { "" }
        ),
        WaitCondition::ConfigMapExists { namespace, name } => {
            format!("config map {namespace}/{name}")
        }
        WaitCondition::ResourceReady { kind, namespace, name, .. } => {
            let ns = namespace.as_ref().map(|n| format!("{n}/")).unwrap_or_default();
            format!("{kind} {ns}{name} to be Ready")
        }
    }
}

/// What a Sail plan does with the operator and the CNI, in one line.
fn sail_line(o: &super::plan::PlanOptions) -> String {
    let operator = match (o.operator, super::sail::release_for(o.istio)) {
        (super::OperatorSource::Preinstalled, _) => {
            "already installed on every cluster (the plan neither installs nor removes it)"
                .to_string()
        }
        (super::OperatorSource::Helm, Some(r)) => {
            format!("installed from its Helm chart {}, removed in step 9", r.operator)
        }
        (super::OperatorSource::Helm, None) => "no release installs this version".to_string(),
    };
    let cni = if o.cni { "on" } else { "off (--cni turns it on)" };
    format!("Sail operator: {operator}; IstioCNI on the remotes: {cni}")
}

fn describe_check(c: &Check) -> String {
    match c {
        Check::WebhookConfigurationExists { kind, name, min_webhooks } => {
            format!("{} webhook configuration {name} ({min_webhooks}+ webhooks)", kebab(kind))
        }
        Check::ConfigMapExists { namespace, name } => format!("config map {namespace}/{name}"),
        Check::IstiodAddress { namespace, service, object, address, ports } => {
            let [xds, webhook] = ports;
            format!(
                "{object:?} of service {namespace}/{service} point at {address} ({xds}, {webhook})"
            )
        }
        Check::WebhooksDoNotMention { text } => {
            format!("no webhook configuration mentions {text}")
        }
        Check::ExecGreeting { namespace, selector, container, url, versions, requests } => {
            format!(
                "`curl -sS {url}` from {selector} ({container}) in {namespace} greets {} \
                 within {requests} request(s)",
                greetings(versions)
            )
        }
        Check::IngressGreeting { namespace, service, port, path, versions, requests } => format!(
            "http://<LoadBalancer IP of {namespace}/{service}>:{port}{path} greets {} \
             within {requests} request(s)",
            greetings(versions)
        ),
    }
}

fn greetings(versions: &[String]) -> String {
    versions.iter().map(|v| format!("`Hello version: {v}`")).collect::<Vec<_>>().join(" and ")
}

//! Images without a registry per node, the `kind load` idea (kind-node.md): pull once
//! on the host where missing, save once, and stream the archive into each node's
//! containerd in parallel, skipping nodes that already have every image.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::SystemInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::KindError;
use super::exec::{self, Stdin};

/// The command that prints containerd's effective configuration.
pub fn config_dump_argv() -> Vec<String> {
    ["containerd", "config", "dump"].map(String::from).to_vec()
}

/// The command that prints what the node's CRI knows of `image`, as JSON whose
/// `status.id` is the image ID; it fails where the node lacks the image.
pub fn inspect_argv(image: &str) -> Vec<String> {
    ["crictl", "inspecti", "-o", "json", image].map(String::from).to_vec()
}

/// The image ID (`sha256:...`) in `crictl inspecti -o json` output.
pub fn image_id_from_inspect(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["status"]["id"].as_str().filter(|id| !id.is_empty()).map(str::to_string)
}

/// Whether a node must get the image again: it lacks it, or has it under another
/// image ID than the host's (the tag was rebuilt since it was loaded, e.g. in a reused
/// run). `node_id` is `None` where the node lacks it. A host whose Docker keeps images
/// in containerd reports the index digest, not the config digest, as the ID: there
/// the IDs never match and images are always loaded again (correct, only slower).
pub fn needs_load(host_id: &str, node_id: Option<&str>) -> bool {
    node_id != Some(host_id)
}

/// The command that imports a `docker save` archive from stdin into the Kubernetes
/// namespace of containerd. `--all-platforms` fails for archives from Docker's
/// containerd image store (kind issue 3795), so it is left out there.
pub fn import_argv(snapshotter: &str, all_platforms: bool) -> Vec<String> {
    let mut argv: Vec<String> =
        ["ctr", "--namespace=k8s.io", "images", "import"].map(String::from).to_vec();
    if all_platforms {
        argv.push("--all-platforms".to_string());
    }
    argv.push("--digests".to_string());
    argv.push(format!("--snapshotter={snapshotter}"));
    argv.push("-".to_string());
    argv
}

/// The snapshotter the CRI plugin uses, from `containerd config dump` (containerd 1.x
/// keeps it in the CRI plugin's `containerd` table, 2.x in the images plugin);
/// `overlayfs` when neither says.
pub fn snapshotter_from_config_dump(dump: &str) -> String {
    const TABLES: [&str; 2] = [
        r#"[plugins."io.containerd.grpc.v1.cri".containerd]"#,
        r#"[plugins."io.containerd.cri.v1.images"]"#,
    ];
    let mut in_table = false;
    for line in dump.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = TABLES.contains(&t.replace('\'', "\"").as_str());
            continue;
        }
        if in_table
            && let Some((key, value)) = t.split_once('=')
            && key.trim() == "snapshotter"
        {
            let v = value.trim().trim_matches(['"', '\'']);
            if !v.is_empty() {
                return v.to_string();
            }
        }
    }
    "overlayfs".to_string()
}

/// Docker stores images in containerd (`driver-type io.containerd.snapshotter.v1`).
pub fn uses_containerd_image_store(info: &SystemInfo) -> bool {
    info.driver_status.as_ref().is_some_and(|pairs| {
        pairs.iter().any(|p| {
            p.first().is_some_and(|k| k == "driver-type")
                && p.get(1).is_some_and(|v| v == "io.containerd.snapshotter.v1")
        })
    })
}

/// Host facts worth a warning before a kind run.
pub fn host_warnings(info: &SystemInfo) -> Vec<String> {
    use bollard::models::SystemInfoCgroupVersionEnum;
    let mut w = Vec::new();
    if info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_1) {
        w.push(
            "the host uses cgroup v1: kubelets from 1.35 on need failCgroupV1: false (set by \
             this provider); cgroup v2 is preferred"
                .to_string(),
        );
    }
    if uses_containerd_image_store(info) {
        w.push(
            "Docker uses the containerd image store: images are imported without \
             --all-platforms (kind issue 3795)"
                .to_string(),
        );
    }
    w
}

/// `name` with `:latest` when it names neither a tag nor a digest (a pull without a
/// tag would fetch every tag).
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// How long pulling one image may take by default ([`super::KindOptions::image_pull_timeout`]):
/// Istio's images are a few hundred MB at most, so ten minutes means a registry (or
/// the path to it) that stalls, not a slow download.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Pulls `image` through the Docker daemon (its own mirrors and credentials apply).
pub async fn pull(docker: &Docker, image: &str) -> Result<(), KindError> {
    let reference = with_default_tag(image);
    let opts = CreateImageOptionsBuilder::new().from_image(&reference).build();
    let mut progress = docker.create_image(Some(opts), None, None);
    while let Some(item) = progress.next().await {
        let info = item.map_err(|e| KindError::Image {
            image: image.to_string(),
            detail: format!("pull: {e}"),
        })?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(KindError::Image {
                image: image.to_string(),
                detail: format!("pull: {detail}"),
            });
        }
    }
    Ok(())
}

/// What [`load`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Images pulled on the host (the others were there already).
    pub pulled: Vec<String>,
    /// Clusters whose node got the archive imported.
    pub loaded: Vec<String>,
    /// Clusters whose node already had every image.
    pub skipped: Vec<String>,
}

/// [`pull`], given up after `timeout` ([`KindError::ImagePullTimeout`]).
pub async fn pull_within(docker: &Docker, image: &str, timeout: Duration) -> Result<(), KindError> {
    tokio::time::timeout(timeout, pull(docker, image))
        .await
        .map_err(|_| KindError::ImagePullTimeout { image: image.to_string(), timeout })?
}

/// Makes every image available in every node: `nodes` are (cluster, container) pairs.
/// Images missing on the host are pulled, each within `pull_timeout`. The archive is
/// written into `dir` and removed afterwards. Execs are privileged as kind's unless
/// `privileged` is false (see [`super::KindOptions::privileged`]).
pub async fn load(
    docker: &Docker,
    nodes: &[(String, String)],
    images: &[String],
    dir: &Path,
    privileged: bool,
    pull_timeout: Duration,
) -> Result<LoadReport, KindError> {
    let mut report = LoadReport::default();
    if images.is_empty() {
        return Ok(report);
    }
    let images: Vec<String> = images.iter().map(|i| with_default_tag(i)).collect();
    let mut host_ids = Vec::new();
    for image in &images {
        if docker.inspect_image(image).await.is_err() {
            tracing::info!(image, "pulling on the host");
            pull_within(docker, image, pull_timeout).await?;
            report.pulled.push(image.clone());
        }
        let inspected = docker.inspect_image(image).await.map_err(|e| KindError::Image {
            image: image.clone(),
            detail: format!("inspect on the host: {e}"),
        })?;
        host_ids.push((image.clone(), inspected.id.unwrap_or_default()));
    }
    let all_platforms = match docker.info().await {
        Ok(info) => !uses_containerd_image_store(&info),
        Err(_) => true,
    };

    // Which nodes lack something, and their snapshotters.
    let checks = nodes
        .iter()
        .map(|(cluster, node)| node_state(docker, cluster, node, &host_ids, privileged));
    let states = futures::future::try_join_all(checks).await?;
    let needing: Vec<&NodeState> = states.iter().filter(|s| s.missing).collect();
    report.skipped = states.iter().filter(|s| !s.missing).map(|s| s.cluster.clone()).collect();
    if needing.is_empty() {
        return Ok(report);
    }

    let archive =
        tempfile::Builder::new().prefix("images-").suffix(".tar").tempfile_in(dir).map_err(
            |e| KindError::Image { image: images.join(" "), detail: format!("archive: {e}") },
        )?;
    save(docker, &images, archive.path()).await?;
    let imports = needing.iter().map(|s| {
        let argv = import_argv(&s.snapshotter, all_platforms);
        let path = archive.path().to_path_buf();
        async move {
            let out = exec::exec(docker, &s.node, &argv, Stdin::File(path), privileged)
                .await
                .map_err(|source| KindError::Exec {
                    cluster: s.cluster.clone(),
                    step: "import images",
                    source,
                })?;
            if out.exit_code != 0 {
                return Err(KindError::Step {
                    cluster: s.cluster.clone(),
                    step: "import images",
                    detail: super::bootstrap::describe_failure(&argv, &out),
                });
            }
            Ok(s.cluster.clone())
        }
    });
    report.loaded = futures::future::try_join_all(imports).await?;
    Ok(report)
}

struct NodeState {
    cluster: String,
    node: String,
    snapshotter: String,
    missing: bool,
}

/// The node's snapshotter, and whether it lacks one of `images` (image, host image ID).
async fn node_state(
    docker: &Docker,
    cluster: &str,
    node: &str,
    images: &[(String, String)],
    privileged: bool,
) -> Result<NodeState, KindError> {
    let run = |step: &'static str, argv: Vec<String>| async move {
        exec::exec(docker, node, &argv, Stdin::None, privileged)
            .await
            .map_err(|source| KindError::Exec { cluster: cluster.to_string(), step, source })
    };
    let dump = run("containerd config dump", config_dump_argv()).await?;
    if dump.exit_code != 0 {
        return Err(KindError::Step {
            cluster: cluster.to_string(),
            step: "containerd config dump",
            detail: super::bootstrap::describe_failure(&config_dump_argv(), &dump),
        });
    }
    let snapshotter = snapshotter_from_config_dump(&dump.stdout_text());
    let mut missing = false;
    for (image, host_id) in images {
        let out = run("crictl inspecti", inspect_argv(image)).await?;
        let node_id = (out.exit_code == 0).then(|| image_id_from_inspect(&out.stdout_text()));
        if needs_load(host_id, node_id.flatten().as_deref()) {
            missing = true;
            break;
        }
    }
    Ok(NodeState { cluster: cluster.to_string(), node: node.to_string(), snapshotter, missing })
}

/// `docker save` of every image into one archive at `path`.
async fn save(docker: &Docker, images: &[String], path: &Path) -> Result<(), KindError> {
    let err = |detail: String| KindError::Image { image: images.join(" "), detail };
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut file =
        tokio::fs::File::create(path).await.map_err(|e| err(format!("create archive: {e}")))?;
    let mut stream = docker.export_images(&refs);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| err(format!("save: {e}")))?;
        file.write_all(&chunk).await.map_err(|e| err(format!("write archive: {e}")))?;
    }
    file.flush().await.map_err(|e| err(format!("write archive: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_command_line() {
        assert_eq!(
            import_argv("overlayfs", true).join(" "),
            "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -"
        );
        assert_eq!(
            import_argv("native", false).join(" "),
            "ctr --namespace=k8s.io images import --digests --snapshotter=native -"
        );
        assert_eq!(
            inspect_argv("istio/pilot:1.30.3").join(" "),
            "crictl inspecti -o json istio/pilot:1.30.3"
        );
        assert_eq!(config_dump_argv().join(" "), "containerd config dump");
    }

    #[test]
    fn an_image_is_loaded_again_when_the_node_has_another_id_for_its_tag() {
        let inspect =
            r#"{"status":{"id":"sha256:aaa","repoTags":["istio/pilot:1.30.3"]},"info":{}}"#;
        assert_eq!(image_id_from_inspect(inspect).as_deref(), Some("sha256:aaa"));
        assert_eq!(image_id_from_inspect("not json"), None);
        assert_eq!(image_id_from_inspect(r#"{"status":{}}"#), None);
        assert!(!needs_load("sha256:aaa", Some("sha256:aaa")));
        assert!(needs_load("sha256:bbb", Some("sha256:aaa")), "the tag was rebuilt");
        assert!(needs_load("sha256:aaa", None), "the node lacks it");
    }

    #[test]
    fn snapshotter_is_read_from_the_cri_tables() {
        let v1 = "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"x\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    default_runtime_name = \"runc\"\n    snapshotter = \"native\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes]\n    snapshotter = \"wrong\"\n";
        assert_eq!(snapshotter_from_config_dump(v1), "native");
        let v2 = "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'fuse-overlayfs'\n";
        assert_eq!(snapshotter_from_config_dump(v2), "fuse-overlayfs");
        assert_eq!(snapshotter_from_config_dump("[other]\nsnapshotter = \"zfs\"\n"), "overlayfs");
    }

    #[test]
    fn containerd_image_store_is_detected_from_docker_info() {
        let info = |pairs: &[(&str, &str)]| SystemInfo {
            driver_status: Some(
                pairs.iter().map(|(k, v)| vec![k.to_string(), v.to_string()]).collect(),
            ),
            ..Default::default()
        };
        assert!(uses_containerd_image_store(&info(&[(
            "driver-type",
            "io.containerd.snapshotter.v1"
        )])));
        assert!(!uses_containerd_image_store(&info(&[("Backing Filesystem", "extfs")])));
        assert!(!uses_containerd_image_store(&SystemInfo::default()));
        assert!(
            host_warnings(&info(&[("driver-type", "io.containerd.snapshotter.v1")]))
                .iter()
                .any(|w| w.contains("3795"))
        );
    }

    #[test]
    fn pulls_always_name_a_tag_or_digest() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("istio/pilot:1.30.3"), "istio/pilot:1.30.3");
        assert_eq!(with_default_tag("localhost:5000/pilot"), "localhost:5000/pilot:latest");
        assert_eq!(with_default_tag("localhost:5000/pilot:1"), "localhost:5000/pilot:1");
        assert_eq!(with_default_tag("kindest/node@sha256:ab"), "kindest/node@sha256:ab");
    }

    /// A stand-in Docker daemon on a Unix socket: no image is present, and a pull
    /// (`POST /images/create`) is accepted but never answered, as a stalled registry
    /// leaves it. Nothing leaves the machine. Returns the socket path and how many
    /// pulls were asked for.
    async fn stalling_daemon(
        dir: &Path,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let path = dir.join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let pulls = Arc::new(AtomicUsize::new(0));
        let counter = pulls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut request = String::new();
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if request.is_empty() {
                                request = line;
                            }
                        }
                        let mut body = vec![0; length];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        if request.contains("/images/create") {
                            counter.fetch_add(1, Ordering::SeqCst);
                            std::future::pending::<()>().await;
                        }
                        let json = r#"{"message":"No such image"}"#;
                        let answer = format!(
                            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\n\r\n{json}",
                            json.len()
                        );
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (path.to_str().unwrap().to_string(), pulls)
    }

    #[tokio::test]
    async fn a_stalled_pull_gives_up_after_its_timeout_naming_image_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, pulls) = stalling_daemon(dir.path()).await;
        let docker = Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION).unwrap();
        let image = "registry.invalid/stalls:1".to_string();
        let timeout = Duration::from_millis(300);
        // The bound on the test itself: without a pull timeout, `load` waits forever.
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            load(&docker, &[], std::slice::from_ref(&image), dir.path(), false, timeout),
        )
        .await
        .expect("load must give up on a stalled pull by itself");
        let err = result.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, KindError::ImagePullTimeout { image: i, timeout: t }
                if *i == image && *t == timeout),
            "{msg}"
        );
        assert!(msg.contains("registry.invalid/stalls:1") && msg.contains("300ms"), "{msg}");
        assert!(msg.contains("docker pull registry.invalid/stalls:1"), "{msg}");
        assert_eq!(pulls.load(std::sync::atomic::Ordering::SeqCst), 1, "one pull was asked for");
    }

    #[test]
    fn the_default_pull_timeout_is_bounded() {
        let opts = super::super::KindOptions::new("i", crate::cluster::RunId::new());
        assert_eq!(opts.image_pull_timeout, PULL_TIMEOUT);
        assert_eq!(PULL_TIMEOUT, Duration::from_secs(600));
    }
}

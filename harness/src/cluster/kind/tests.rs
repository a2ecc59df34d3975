//! The provider's Docker plumbing, for real, without kind: node containers created
//! with kind's options from a local `FROM scratch` image holding Debian's static
//! busybox, on an `--internal` network. Stand-ins for `kubeadm`, `kubectl` and
//! `systemctl` record what the bootstrap runs, so its interpreter is checked end to end
//! up to the point where a real API server would be needed (the Node Ready wait).
//!
//! Needs Docker and `/bin/busybox` (Debian's `busybox-static`); every test removes
//! what it created by its run id, also when it fails.

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::exec::{self, ExecError, Stdin};
use super::*;
use crate::cluster::docker;
use crate::cluster::provider::Provider;
use crate::topology::{NetworkMode, Topology};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] =
    &["sh", "cat", "cp", "mkdir", "sleep", "grep", "wc", "head", "tr", "ls", "test", "[", "env"];

/// kind's entrypoint hands over to its argument (systemd) as PID 1; this one too.
const ENTRYPOINT: &str = "#!/bin/sh\nexec \"$@\"\n";
/// Stands in for systemd: its readiness line reaches the log only through a TTY.
const INIT: &str = "#!/bin/sh\n\
if [ -t 1 ]; then echo '[  OK  ] Reached target multi-user.target - Multi-User System.'; \
else echo 'no terminal: systemd would not log its targets'; fi\n\
exec sleep 600\n";
/// Records each call; `kubeadm init` writes an admin kubeconfig as kubeadm would.
const KUBEADM: &str = "#!/bin/sh\necho \"kubeadm $*\" >> /tmp/calls\n\
mkdir -p /etc/kubernetes && cp /kind/fake-admin.conf /etc/kubernetes/admin.conf\n";
/// Records each call and what `apply -f -` received.
const KUBECTL: &str = "#!/bin/sh\necho \"kubectl $*\" >> /tmp/calls\n\
case \"$*\" in *' apply -f -') cat >> /tmp/applied; echo '---' >> /tmp/applied;; esac\n";
/// `containerd config dump` prints the node's configuration.
const CONTAINERD: &str =
    "#!/bin/sh\necho \"containerd $*\" >> /tmp/calls\ncat /etc/containerd/config.toml\n";
/// `crictl inspecti -o json` finds an image once `ctr` imported an archive, under the
/// image ID the archive's manifest names.
const CRICTL: &str = "#!/bin/sh\necho \"crictl $*\" >> /tmp/calls\n\
test -s /tmp/imported-id || exit 1\n\
printf '{\"status\":{\"id\":\"sha256:%s\"}}\\n' \"$(cat /tmp/imported-id)\"\n";
/// `ctr images import -` lists the archive it reads from stdin and keeps the image ID
/// (the config's digest) its `manifest.json` names.
const CTR: &str = "#!/bin/sh\necho \"ctr $*\" >> /tmp/calls\n\
cat > /tmp/archive.tar && tar -tf /tmp/archive.tar > /tmp/archive-list\n\
tar -xOf /tmp/archive.tar manifest.json | sed -n 's/.*\"Config\":\"\\([^\"]*\\)\".*/\\1/p' \\\n\
  | sed 's|^blobs/sha256/||; s|[.]json$||' > /tmp/imported-id\nrm /tmp/archive.tar\n";
const SYSTEMCTL: &str = "#!/bin/sh\necho \"systemctl $*\" >> /tmp/calls\n";
const CNI: &str = "# would you kindly template this file\nkind: DaemonSet\nenv:\n- name: POD_SUBNET\n  value: {{ .PodSubnet }}\n";
const CONTAINERD_TOML: &str = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";

/// An admin.conf in kubeadm's shape with the given (base64-encoded) credentials.
fn admin_conf(ca: &str, cert: &str, key: &str) -> String {
    let b = |s: &str| STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kind\n  cluster:\n    server: https://kind-control-plane:6443\n    certificate-authority-data: {}\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: admin\n  context: {{cluster: kind, user: kubernetes-admin}}\ncurrent-context: admin\n",
        b(ca),
        b(cert),
        b(key),
    )
}

/// Placeholder credentials, for the parsing tests.
fn fake_admin_conf() -> String {
    admin_conf(
        "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
    )
}

/// Real (throwaway) certificates, so a kube client can be built from the node's
/// admin.conf: generated when the stand-in image is built.
fn generated_admin_conf() -> String {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let pki = crate::cluster::pki::ClusterPki::generate("kind-test", ip, ip).unwrap();
    admin_conf(&pki.ca_cert_pem, &pki.admin_cert_pem, &pki.admin_key_pem)
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

/// The stand-in node image, built once per content (tag = content hash).
async fn test_node_image(docker: &Docker) -> String {
    let busybox = std::fs::read(BUSYBOX).expect("Debian's busybox-static provides /bin/busybox");
    let mut b = tar::Builder::new(Vec::new());
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\n\
        ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
        ENTRYPOINT [\"/usr/local/bin/entrypoint\", \"/sbin/init\"]\n";
    append(&mut b, "Dockerfile", dockerfile.as_bytes(), 0o644);
    append(&mut b, "rootfs/bin/busybox", &busybox, 0o755);
    crate::cluster::image::append_busybox_links(&mut b, APPLETS).unwrap();
    append(&mut b, "rootfs/usr/local/bin/entrypoint", ENTRYPOINT.as_bytes(), 0o755);
    append(&mut b, "rootfs/sbin/init", INIT.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/kubeadm", KUBEADM.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/kubectl", KUBECTL.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/systemctl", SYSTEMCTL.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/containerd", CONTAINERD.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/crictl", CRICTL.as_bytes(), 0o755);
    append(&mut b, "rootfs/usr/bin/ctr", CTR.as_bytes(), 0o755);
    append(&mut b, "rootfs/kind/version", b"v1.35.0\n", 0o644);
    append(&mut b, "rootfs/kind/manifests/default-cni.yaml", CNI.as_bytes(), 0o644);
    append(&mut b, "rootfs/etc/containerd/config.toml", CONTAINERD_TOML.as_bytes(), 0o644);
    // The tag hashes everything but the generated credentials (new on every build).
    let digest = Sha256::digest(b.get_ref());
    let tag = format!("ecp-kind-testnode:{}", &hex::encode(digest)[..12]);
    if docker.inspect_image(&tag).await.is_ok() {
        return tag;
    }
    append(&mut b, "rootfs/kind/fake-admin.conf", generated_admin_conf().as_bytes(), 0o600);
    let context = b.into_inner().unwrap();
    let opts = BuildImageOptionsBuilder::new().t(&tag).dockerfile("Dockerfile").rm(true).build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.unwrap();
        assert!(info.error_detail.is_none(), "building {tag}: {:?}", info.error_detail);
    }
    tag
}

/// Removes everything labelled with the run id when dropped.
struct Cleanup(RunId);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = docker::remove_run_blocking(&self.0) {
            eprintln!("cleanup of run {} failed: {e}", self.0);
        }
    }
}

struct Fixture {
    docker: Docker,
    opts: KindOptions,
    topology: Topology,
    _cleanup: Cleanup,
}

/// An internal network and the run's options for the stand-in image. The host has no
/// `/lib/modules`, so that bind is left out (the unit tests assert it by default).
async fn fixture() -> Fixture {
    let docker = docker::connect().await.unwrap();
    let image = test_node_image(&docker).await;
    let run_id = RunId::new();
    let cleanup = Cleanup(run_id.clone());
    let mut opts = KindOptions::new(image.clone(), run_id.clone());
    // Where the daemon cannot grant every capability (this project's build machines),
    // the plumbing is exercised unprivileged; elsewhere exactly as kind runs it.
    opts.privileged = privileged_containers_work(&docker, &image, &run_id).await.unwrap();
    if !opts.privileged {
        eprintln!(
            "note: privileged containers do not work on this Docker host; testing unprivileged"
        );
    }
    opts.internal_network = true;
    opts.mount_lib_modules = false;
    opts.systemd_timeout = Duration::from_secs(20);
    let labels = docker::labels(&run_id, "kind-test");
    let subnet =
        create_network(&docker, &opts.network, true, &labels, &HashMap::new()).await.unwrap();
    assert!(subnet.prefix_len() <= 30, "{subnet}");
    let topology = Topology::new(1, NetworkMode::default()).unwrap();
    Fixture { docker, opts, topology, _cleanup: cleanup }
}

/// Starts a node for the first cluster; its name carries the run id (container names
/// are global; parallel tests must not collide).
async fn start_test_node(f: &Fixture) -> StartedNode {
    let spec = f.topology.clusters[0].clone();
    let started =
        start_node(&f.docker, &spec, &f.opts, &HostSettings::default(), &[]).await.unwrap();
    assert_eq!(started.name, node::node_name(&f.opts.run_id, &spec.name));
    started
}

async fn sh(f: &Fixture, node: &str, script: &str) -> exec::ExecOutput {
    let argv = ["sh", "-c", script].map(String::from).to_vec();
    exec::exec(&f.docker, node, &argv, Stdin::None, f.opts.privileged).await.unwrap()
}

#[tokio::test]
async fn node_container_runs_with_kinds_options_and_logs_readiness_through_its_tty() {
    let f = fixture().await;
    let n = start_test_node(&f).await;
    let line = exec::wait_for_log_line(
        &f.docker,
        &n.name,
        f.opts.systemd_timeout,
        exec::systemd_ready_line,
    )
    .await
    .unwrap();
    assert!(line.contains("Multi-User System"), "{line}");

    let info = f.docker.inspect_container(&n.id, None).await.unwrap();
    let config = info.config.unwrap();
    assert_eq!(config.tty, Some(true));
    assert_eq!(config.hostname.as_deref(), Some(n.name.as_str()));
    assert_eq!(config.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    let host = info.host_config.unwrap();
    assert_eq!(host.privileged, Some(f.opts.privileged));
    assert_eq!(host.cgroupns_mode, Some(bollard::models::HostConfigCgroupnsModeEnum::PRIVATE));
    assert_eq!(host.init, Some(false));
    assert!(n.ip.is_private(), "{}", n.ip);
    assert_eq!(n.host_port, 0, "Docker publishes nothing from an internal-only container");

    // What the node sees: tmpfs on /tmp and /run, a volume (not the image layer) on /var,
    // all capabilities (privileged), its own hostname.
    let mounts = sh(&f, &n.name, "cat /proc/mounts").await.stdout_text();
    let fs_of = |dir: &str| {
        mounts.lines().find_map(|l| {
            let mut p = l.split_whitespace();
            let (_, mnt, fs) = (p.next()?, p.next()?, p.next()?);
            (mnt == dir).then(|| fs.to_string())
        })
    };
    assert_eq!(fs_of("/tmp").as_deref(), Some("tmpfs"), "{mounts}");
    assert_eq!(fs_of("/run").as_deref(), Some("tmpfs"), "{mounts}");
    assert!(fs_of("/var").is_some_and(|fs| fs != "overlay"), "{mounts}");
    if f.opts.privileged {
        let caps = sh(&f, &n.name, "grep CapEff /proc/self/status").await.stdout_text();
        assert!(!caps.contains("00000000a80425fb"), "default capabilities only: {caps}");
    }
    let env = sh(&f, &n.name, "env").await.stdout_text();
    assert!(env.contains("KUBECONFIG=/etc/kubernetes/admin.conf"), "{env}");
    assert!(env.contains("container=docker"), "{env}");
}

#[tokio::test]
async fn without_a_tty_the_readiness_line_never_comes() {
    let f = fixture().await;
    let mut spec = NodeContainerSpec::for_cluster(&f.topology.clusters[0], &f.opts);
    spec.name = format!("{}-notty", f.opts.run_id);
    spec.body.tty = Some(false);
    let created = f.docker.create_container(Some(spec.create_options()), spec.body).await.unwrap();
    f.docker.start_container(&created.id, None).await.unwrap();
    let err = exec::wait_for_log_line(
        &f.docker,
        &created.id,
        Duration::from_secs(2),
        exec::systemd_ready_line,
    )
    .await
    .unwrap_err();
    match err {
        ExecError::LogTimeout { tail, .. } => assert!(tail.contains("no terminal"), "{tail}"),
        other => panic!("expected a timeout, got {other}"),
    }
}

#[tokio::test]
async fn execs_take_stdin_report_exit_codes_and_uploads_land() {
    let f = fixture().await;
    let n = start_test_node(&f).await;
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // kind's way of writing files: `cp /dev/stdin <path>` fed through the exec.
    let text = "line one\nline two\n";
    let out = exec::exec(
        &f.docker,
        &n.name,
        &argv(&["cp", "/dev/stdin", "/tmp/written"]),
        Stdin::Bytes(text.as_bytes().to_vec()),
        f.opts.privileged,
    )
    .await
    .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.tail(5));
    assert_eq!(sh(&f, &n.name, "cat /tmp/written").await.stdout_text(), text);

    // Large input streamed from a file (image archives), counted on the other side.
    let mut big = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut big, &vec![b'x'; 3 << 20]).unwrap();
    let out = exec::exec(
        &f.docker,
        &n.name,
        &argv(&["wc", "-c"]),
        Stdin::File(big.path().to_path_buf()),
        f.opts.privileged,
    )
    .await
    .unwrap();
    assert_eq!(out.stdout_text().trim(), (3 << 20).to_string());

    // Exit codes and stderr come back; a command that ignores its input still reports
    // its own exit code, not a broken pipe.
    let out = sh(&f, &n.name, "echo oops >&2; exit 3").await;
    assert_eq!((out.exit_code, out.tail(1).as_str()), (3, "oops"));
    let out = exec::exec(
        &f.docker,
        &n.name,
        &argv(&["sh", "-c", "exit 2"]),
        Stdin::File(big.path().to_path_buf()),
        f.opts.privileged,
    )
    .await
    .unwrap();
    assert_eq!(out.exit_code, 2);

    // Uploads land in the container's own filesystem (not in tmpfs mounts such as /tmp).
    exec::upload_file(&f.docker, &n.name, "/etc/uploaded.toml", b"a = 1\n", 0o600).await.unwrap();
    let out = sh(&f, &n.name, "cat /etc/uploaded.toml; ls -l /etc/uploaded.toml").await;
    assert!(out.stdout_text().starts_with("a = 1\n-rw-------"), "{}", out.stdout_text());
}

/// [`docker::exec`] (the checks' exec, not the bootstrap's), on the stand-in node.
#[tokio::test]
async fn a_docker_exec_that_does_not_finish_gives_up_naming_container_and_command() {
    let f = fixture().await;
    let n = start_test_node(&f).await;
    let timeout = Duration::from_millis(500);
    // The bound on the test itself: without its own timeout the exec waits 120 s.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        docker::exec(&f.docker, &n.name, &["sleep", "120"], timeout),
    )
    .await
    .expect("the exec must give up by itself");
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, crate::cluster::ClusterError::ExecTimeout { container, command, timeout: t }
            if *container == n.name && command == "sleep 120" && *t == timeout),
        "{msg}"
    );
    assert!(msg.contains(&format!("exec `sleep 120` in container {}", n.name)), "{msg}");
    // A command that ends in time still answers.
    let (_, out) =
        docker::exec(&f.docker, &n.name, &["sh", "-c", "echo hi"], Duration::from_secs(20))
            .await
            .unwrap();
    assert_eq!(out.trim(), "hi");
}

#[tokio::test]
async fn bootstrap_runs_kinds_steps_in_order_up_to_the_node_ready_wait() {
    let mut f = fixture().await;
    f.opts.registry_mirrors = vec!["docker.io=http://kind-registry:5000".parse().unwrap()];
    let n = start_test_node(&f).await;
    let target = bootstrap::NodeTarget { cluster: &n.spec, container: &n.name, ip: n.ip };
    let mut seen_admin = None;
    let err = bootstrap::run(&f.docker, &target, &f.opts, |admin| {
        seen_admin = Some(admin);
        async {
            Err(KindError::Step {
                cluster: "test".into(),
                step: "wait for node Ready",
                detail: "no API server in this test".into(),
            })
        }
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no API server in this test"), "{err}");
    let in_image = sh(&f, &n.name, "cat /kind/fake-admin.conf").await.stdout_text();
    assert_eq!(seen_admin.as_deref(), Some(in_image.as_str()));
    assert!(admin_credentials("test", &in_image).is_ok());

    // The commands the stand-ins saw, in order.
    let calls = sh(&f, &n.name, "cat /tmp/calls").await.stdout_text();
    let k = "kubectl --kubeconfig=/etc/kubernetes/admin.conf";
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "systemctl restart containerd".to_string(),
            "kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6".to_string(),
            format!("{k} apply -f -"),
            format!("{k} apply -f -"),
            format!("{k} taint nodes --all node-role.kubernetes.io/control-plane:NoSchedule-"),
            format!(
                "{k} label nodes --all node.kubernetes.io/exclude-from-external-load-balancers-"
            ),
        ]
    );
    // kubeadm's config names this node, its address and the cluster's subnets.
    let written = sh(&f, &n.name, "cat /kind/kubeadm.conf").await.stdout_text();
    let expected = kubeadm::KubeadmConfig {
        cluster_name: n.spec.name.clone(),
        node_name: n.name.clone(),
        kubernetes_version: kubeadm::KubeVersion::parse("v1.35.0").unwrap(),
        node_ip: n.ip,
        pod_subnet: n.spec.pod_subnet,
        service_subnet: n.spec.service_subnet,
        extra_cert_sans: vec![],
    };
    assert_eq!(written, expected.render().unwrap());
    // The CNI manifest templated with the pod subnet, then the fallback StorageClass.
    let applied = sh(&f, &n.name, "cat /tmp/applied").await.stdout_text();
    assert!(applied.contains("value: 10.10.0.0/16"), "{applied}");
    assert!(!applied.contains("{{"), "{applied}");
    assert!(applied.contains("provisioner: kubernetes.io/host-path"), "{applied}");
    // The mirror: containerd's config patched, hosts.toml in place, before kubeadm ran.
    let config = sh(&f, &n.name, "cat /etc/containerd/config.toml").await.stdout_text();
    assert_eq!(config, mirror::patch_containerd_config(CONTAINERD_TOML));
    let hosts =
        sh(&f, &n.name, "cat /etc/containerd/certs.d/docker.io/hosts.toml").await.stdout_text();
    assert_eq!(hosts, f.opts.registry_mirrors[0].hosts_toml());
}

#[tokio::test]
async fn a_failing_step_names_cluster_step_command_and_output() {
    let f = fixture().await;
    let n = start_test_node(&f).await;
    // Break kubeadm: the bootstrap must stop there and say so.
    let out = sh(
        &f,
        &n.name,
        "printf '#!/bin/sh\\necho preflight broke >&2\\nexit 1\\n' > /usr/bin/kubeadm",
    )
    .await;
    assert_eq!(out.exit_code, 0);
    let target = bootstrap::NodeTarget { cluster: &n.spec, container: &n.name, ip: n.ip };
    let err = bootstrap::run(&f.docker, &target, &f.opts, |_| async {
        Err(KindError::Step { cluster: "x".into(), step: "unreachable", detail: String::new() })
    })
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("cluster {}", n.spec.name)), "{msg}");
    assert!(msg.contains("step `kubeadm init`"), "{msg}");
    assert!(msg.contains("kubeadm init --config=/kind/kubeadm.conf"), "{msg}");
    assert!(msg.contains("exited with 1: preflight broke"), "{msg}");
}

#[test]
fn admin_credentials_are_decoded_and_never_debug_printed() {
    let creds = admin_credentials("c", &fake_admin_conf()).unwrap();
    assert!(creds.ca_pem.contains("\nCA\n"));
    assert!(creds.client_cert_pem.contains("\nADMIN\n"));
    assert!(creds.client_key_pem.contains("PRIVATE KEY"));
    assert_eq!(format!("{creds:?}"), "AdminCredentials { .. }");
    let err = admin_credentials("c", "apiVersion: v1\nkind: Config\n").unwrap_err();
    assert!(err.to_string().contains("certificate-authority-data"), "{err}");
    let broken = "users:\n- user: {client-key-data: c2VjcmV0LWtleS1ieXRlcw==, x: [}\n";
    let err = admin_credentials("c", broken).unwrap_err().to_string();
    assert!(err.contains("admin.conf is not YAML"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "the error quotes admin.conf: {err}");
}

#[test]
fn options_for_an_istio_release_pick_its_node_image() {
    let o = KindOptions::for_istio("1.29.6".parse().unwrap(), RunId::from_existing("r1")).unwrap();
    assert_eq!(
        o.node_image,
        "kindest/node:v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95"
    );
    assert_eq!(o.network, "ecp-kind-r1");
    assert!(!o.internal_network && o.mount_lib_modules);
    assert_eq!(o.node_ready_timeout, Duration::from_secs(180));
    let o = KindOptions::for_istio("1.23.0".parse().unwrap(), RunId::new()).unwrap();
    assert!(o.node_image.starts_with("kindest/node:v1.30.13@sha256:"), "{}", o.node_image);
}

#[tokio::test]
async fn preflight_names_a_missing_node_image_and_how_to_provide_it() {
    let mut opts = KindOptions::new("kindest/node:v0.0.0-not-here", RunId::new());
    opts.mount_lib_modules = false;
    let t0 = std::time::Instant::now();
    // Never a pull attempt in a test: no registry is reachable from here.
    let err = preflight(&opts, false, Duration::from_secs(1)).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("kindest/node:v0.0.0-not-here is not present locally"), "{msg}");
    assert!(msg.contains("docker pull") && msg.contains("--node-image"), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(10), "preflight must be fast");
    // Callers decide by kind, never by the wording.
    let KindError::Preflight { problems } = err else { panic!("not a preflight error: {err}") };
    assert_eq!(problems.iter().map(|p| p.kind).collect::<Vec<_>>(), [ProblemKind::NodeImage]);
    assert!(problems[0].remedy.starts_with("run `docker pull"), "{:?}", problems[0]);
}

/// The plan a suite would make for `topology` (providers check it in their preflight).
fn plan_for(topology: &Topology) -> crate::install::Plan {
    let options = crate::install::PlanOptions {
        network_mode: topology.network_mode,
        ..crate::install::PlanOptions::new(
            crate::version::NEWEST,
            crate::install::Installer::Istioctl,
            topology.remotes().count(),
        )
    };
    crate::install::plan(&options).unwrap()
}

/// What the suite does with any provider: the preflight, then the capabilities.
async fn provider_preflight<P: Provider>(provider: &P, topology: &Topology) -> Vec<Problem> {
    provider.preflight(&plan_for(topology)).await
}

#[tokio::test]
async fn the_kind_provider_reports_typed_problems_and_never_pulls_unasked() {
    let mut opts = KindOptions::new("kindest/node:v0.0.0-not-here", RunId::new());
    opts.mount_lib_modules = false;
    let provider = KindProvider::new(opts);
    assert_eq!(provider.name(), "kind");
    let topology = Topology::new(1, NetworkMode::default()).unwrap();
    let problems = provider_preflight(&provider, &topology).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, ProblemKind::NodeImage);
    assert!(problems[0].message.contains("could not be pulled (not tried)"), "{problems:?}");
}

#[test]
fn kind_errors_through_the_seam_stay_typed() {
    let unsupported = ClusterError::Unsupported { capability: "x" };
    let back: ClusterError = KindError::Cluster(unsupported).into();
    assert!(matches!(back, ClusterError::Unsupported { .. }), "{back}");
    let step = KindError::Step { cluster: "c".into(), step: "s", detail: "d".into() };
    let msg = step.to_string();
    let wrapped: ClusterError = step.into();
    assert!(matches!(&wrapped, ClusterError::Kind(k) if matches!(**k, KindError::Step { .. })));
    assert_eq!(wrapped.to_string(), msg);
}

#[tokio::test]
async fn preflight_with_a_local_image_checks_that_privileged_containers_start() {
    let docker = docker::connect().await.unwrap();
    let image = test_node_image(&docker).await;
    let run_id = RunId::new();
    let _cleanup = Cleanup(run_id.clone());
    let works = privileged_containers_work(&docker, &image, &run_id).await.unwrap();
    let mut opts = KindOptions::new(image, run_id.clone());
    opts.mount_lib_modules = std::path::Path::new("/lib/modules").is_dir();
    let result = preflight(&opts, false, Duration::from_secs(1)).await;
    if works {
        result.unwrap();
    } else {
        let msg = result.unwrap_err().to_string();
        assert!(msg.contains("cannot start privileged containers"), "{msg}");
        // Knowingly unprivileged (the plumbing self-tests): a warning, not a refusal.
        opts.privileged = false;
        let report = preflight(&opts, false, Duration::from_secs(1)).await.unwrap();
        assert!(report.warnings.iter().any(|w| w.contains("privileged containers do not work")));
    }
    // The probe leaves nothing behind.
    let left = docker::list_labelled(&docker, &docker::run_filter(&run_id)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn kubeconfigs_for_host_and_peers_carry_admin_credentials_and_their_own_server() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Topology::new(1, NetworkMode::default()).unwrap().clusters[1].clone();
    let published = StartedNode {
        spec: spec.clone(),
        name: "config-control-plane".into(),
        id: "id".into(),
        ip: std::net::Ipv4Addr::new(172, 18, 0, 3),
        host_port: 40123,
    };
    let internal_only = StartedNode { host_port: 0, ..published.clone() };
    assert_eq!(host_server(&published), "https://127.0.0.1:40123");
    assert_eq!(host_server(&internal_only), "https://172.18.0.3:6443");

    let path = dir.path().join("config.peer.kubeconfig");
    write_kubeconfig("config", &fake_admin_conf(), "https://172.18.0.3:6443", &path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("config"));
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://172.18.0.3:6443"));
    assert_eq!(cluster.insecure_skip_tls_verify, None);
    let ca = STANDARD.decode(cluster.certificate_authority_data.as_deref().unwrap()).unwrap();
    assert!(String::from_utf8(ca).unwrap().contains("\nCA\n"));
}

#[tokio::test]
async fn a_failed_start_removes_everything_it_created() {
    let docker = docker::connect().await.unwrap();
    let image = test_node_image(&docker).await;
    let run_id = RunId::new();
    let _cleanup = Cleanup(run_id.clone());
    let mut opts = KindOptions::new(image.clone(), run_id.clone());
    opts.privileged = privileged_containers_work(&docker, &image, &run_id).await.unwrap();
    opts.internal_network = true;
    opts.mount_lib_modules = false;
    opts.systemd_timeout = Duration::from_secs(20);
    // No API server answers behind the stand-in's admin.conf: the run gets through the
    // bootstrap, the host kubeconfig and its client, then the Ready wait times out.
    opts.node_ready_timeout = Duration::from_secs(2);
    let topology = Topology::new(1, NetworkMode::default()).unwrap();
    let err = KindRun::start(&topology, &opts).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("start failed as expected: {msg}");
    assert!(matches!(err, KindError::NodeNotReady { .. }), "{msg}");
    assert!(msg.contains("timed out after 2") && msg.contains("node Ready"), "{msg}");
    let left = docker::list_labelled(&docker, &docker::run_filter(&run_id)).await.unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn images_are_saved_once_and_streamed_into_nodes_that_lack_them() {
    let f = fixture().await;
    let n = start_test_node(&f).await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![(n.spec.name.clone(), n.name.clone())];
    // The stand-in node image itself: present on the host, so nothing is pulled.
    let image = f.opts.node_image.clone();
    let load = || async {
        let images = std::slice::from_ref(&image);
        let (privileged, timeout) = (f.opts.privileged, f.opts.image_pull_timeout);
        images::load(&f.docker, &nodes, images, dir.path(), privileged, timeout).await.unwrap()
    };
    let report = load().await;
    assert!(report.pulled.is_empty(), "{report:?}");
    assert_eq!(report.loaded, std::slice::from_ref(&n.spec.name));
    assert!(report.skipped.is_empty());
    let calls = sh(&f, &n.name, "cat /tmp/calls").await.stdout_text();
    let all_platforms = match f.docker.info().await {
        Ok(info) => !images::uses_containerd_image_store(&info),
        Err(_) => true,
    };
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "containerd config dump".to_string(),
            format!("crictl inspecti -o json {image}"),
            images::import_argv("overlayfs", all_platforms).join(" "),
        ]
    );
    // What reached the node's stdin is `docker save`'s archive.
    let listed = sh(&f, &n.name, "cat /tmp/archive-list").await.stdout_text();
    assert!(listed.lines().any(|l| l == "manifest.json"), "{listed}");
    // The archive is gone; a second load finds the image and skips the node.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let again = load().await;
    assert_eq!(again.skipped, std::slice::from_ref(&n.spec.name));
    assert!(again.loaded.is_empty());
    // The node now knows the tag under another image ID (the tag was rebuilt on the
    // host since): the image is loaded again.
    sh(&f, &n.name, "echo 0000 > /tmp/imported-id").await;
    let rebuilt = load().await;
    assert_eq!(rebuilt.loaded, std::slice::from_ref(&n.spec.name));
}

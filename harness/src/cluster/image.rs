//! The apiserver provider's image, built locally with no base image (`FROM scratch`):
//! the three binaries, the shared libraries they need (`ldd`; Debian's etcd needs
//! glibc's `libc.so.6` and `ld-linux-x86-64.so.2`, the kube binaries are static),
//! a static busybox for the shell, and the entry script ([`entrypoint_script`]).
//!
//! The tag carries a hash of the Dockerfile, the layout, the script and each file's
//! path, size and modification time, so a changed binary or script gives a new image and an
//! unchanged one is built once.

use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::ClusterError;
use super::assets::{Assets, KubeVersion};

/// Repository part of the image tag.
pub const IMAGE_REPO: &str = "ecp-harness-apiserver";
/// Where the harness uploads certificates, keys and the runtime environment.
pub const PKI_DIR: &str = "/pki";
/// Busybox applets linked in `/bin`.
const APPLETS: [&str; 13] = [
    "sh", "sleep", "cat", "ls", "ps", "mkdir", "echo", "kill", "ip", "env", "wget", "nslookup",
    "nc",
];

/// The Dockerfile of the build context.
const DOCKERFILE: &str =
    "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/bin/sh\", \"/entrypoint.sh\"]\n";
/// Directories of the image (tar path, mode).
const DIRS: [(&str, u32); 3] =
    [("rootfs/tmp", 0o1777), ("rootfs/pki", 0o700), ("rootfs/var/lib/etcd", 0o700)];

/// The controllers the clusters run: service-account tokens, namespace deletion,
/// deployments to replicasets (to pods, which stay Pending: no kubelet), owner
/// references, aggregated ClusterRoles and the `kube-root-ca.crt` ConfigMaps. Not `*`:
/// the other controllers only cost start-up time on clusters without nodes.
const CONTROLLERS: &str = "serviceaccount-token,serviceaccount,namespace,deployment,replicaset,\
garbagecollector,clusterrole-aggregation,root-ca-cert-publisher";

/// One file of the image: where it goes, where it comes from.
struct ImageFile {
    dest: String,
    src: PathBuf,
}

/// The image for these assets: its tag and content.
pub struct ImageSpec {
    pub tag: String,
    files: Vec<ImageFile>,
    script: String,
}

impl ImageSpec {
    pub fn new(assets: &Assets) -> Result<Self, ClusterError> {
        let mut files = Vec::new();
        for name in super::assets::BINARIES {
            files.push(ImageFile {
                dest: format!("/usr/local/bin/{name}"),
                src: assets.binary(name),
            });
        }
        files.push(ImageFile { dest: "/bin/busybox".to_string(), src: assets.busybox.clone() });
        let mut libs: Vec<PathBuf> = Vec::new();
        for f in &files {
            for lib in shared_libraries(&f.src)? {
                if !libs.contains(&lib) {
                    libs.push(lib);
                }
            }
        }
        for lib in libs {
            files.push(ImageFile { dest: lib.to_string_lossy().into_owned(), src: lib });
        }
        let script = entrypoint_script(assets.kube_version);
        let mut h = Sha256::new();
        h.update(DOCKERFILE);
        h.update(format!("{APPLETS:?}{DIRS:?}"));
        h.update(&script);
        for f in &files {
            let meta = std::fs::metadata(&f.src).map_err(ClusterError::io("stat", &f.src))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            h.update(format!("{}\0{}\0{}\0{mtime}\n", f.dest, f.src.display(), meta.len()));
        }
        let digest = hex::encode(&h.finalize()[..8]);
        let tag = format!("{IMAGE_REPO}:{}-{digest}", assets.kube_version);
        Ok(Self { tag, files, script })
    }

    /// The build context: a Dockerfile and the root filesystem, as a tar archive.
    fn context_tar(&self) -> Result<Vec<u8>, ClusterError> {
        let mut b = tar::Builder::new(Vec::new());
        append_bytes(&mut b, "Dockerfile", DOCKERFILE.as_bytes(), 0o644)?;
        append_bytes(&mut b, "rootfs/entrypoint.sh", self.script.as_bytes(), 0o755)?;
        for (dir, mode) in DIRS {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(mode);
            h.set_size(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, dir, std::io::empty()).map_err(tar_err)?;
        }
        for f in &self.files {
            let file = std::fs::File::open(&f.src).map_err(ClusterError::io("read", &f.src))?;
            let len = file.metadata().map_err(ClusterError::io("stat", &f.src))?.len();
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o755);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, format!("rootfs{}", f.dest), file).map_err(tar_err)?;
        }
        append_busybox_links(&mut b, &APPLETS).map_err(tar_err)?;
        b.into_inner().map_err(tar_err)
    }
}

/// Links `rootfs/bin/<applet>` to `busybox` for each applet: how an image without a
/// base gets its shell and tools from Debian's static busybox.
pub(crate) fn append_busybox_links(
    b: &mut tar::Builder<Vec<u8>>,
    applets: &[&str],
) -> std::io::Result<()> {
    for applet in applets {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        b.append_link(&mut h, format!("rootfs/bin/{applet}"), "busybox")?;
    }
    Ok(())
}

/// Appends a file of `data` with `mode` (mtime 0, so a context's hash is its content's).
pub fn append_bytes(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), ClusterError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, path, data).map_err(tar_err)
}

fn tar_err(e: std::io::Error) -> ClusterError {
    ClusterError::ImageBuild(format!("build context: {e}"))
}

/// The image for `assets`, built unless an image with its tag exists. Returns the tag.
pub async fn ensure_image(docker: &Docker, assets: &Assets) -> Result<String, ClusterError> {
    let spec = ImageSpec::new(assets)?;
    if docker.inspect_image(&spec.tag).await.is_ok() {
        return Ok(spec.tag);
    }
    tracing::info!(tag = %spec.tag, "building the apiserver image");
    let context = spec.context_tar()?;
    let labels = std::collections::HashMap::from([(super::PROVIDER_LABEL, "apiserver")]);
    build(docker, &spec.tag, context, &labels).await?;
    docker.inspect_image(&spec.tag).await.map_err(|e| {
        ClusterError::ImageBuild(format!("{} missing after the build: {e}", spec.tag))
    })?;
    remove_older_images(docker, &spec.tag).await;
    Ok(spec.tag)
}

/// Builds `tag` from `context`, a tar with a `Dockerfile` at its root, with `labels`.
pub async fn build(
    docker: &Docker,
    tag: &str,
    context: Vec<u8>,
    labels: &std::collections::HashMap<&str, &str>,
) -> Result<(), ClusterError> {
    let opts = BuildImageOptionsBuilder::new()
        .t(tag)
        .dockerfile("Dockerfile")
        .rm(true)
        .forcerm(true)
        .labels(labels)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| ClusterError::ImageBuild(format!("{tag}: {e}")))?;
        if let Some(err) = info.error_detail {
            let msg = err.message.unwrap_or_else(|| "unknown error".to_string());
            return Err(ClusterError::ImageBuild(format!("{tag}: {msg}")));
        }
    }
    Ok(())
}

/// Removes the provider's other images (each ~240 MB; a new one comes with every
/// change of binaries or script). One still used by a container stays: Docker
/// refuses without `force`, and that refusal is fine.
async fn remove_older_images(docker: &Docker, keep: &str) {
    use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
    let filters = std::collections::HashMap::from([("reference", vec![IMAGE_REPO])]);
    let listed =
        docker.list_images(Some(ListImagesOptionsBuilder::new().filters(&filters).build()));
    let images = match listed.await {
        Ok(images) => images,
        Err(e) => {
            tracing::debug!("cannot list older apiserver images: {e}");
            return;
        }
    };
    for tag in images.into_iter().flat_map(|i| i.repo_tags).filter(|t| t != keep) {
        let opts = RemoveImageOptionsBuilder::new().build();
        match docker.remove_image(&tag, Some(opts), None).await {
            Ok(_) => tracing::info!(%tag, "removed an older apiserver image"),
            Err(e) => tracing::debug!(%tag, "older apiserver image kept: {e}"),
        }
    }
}

/// The shared libraries `bin` loads, by absolute path (`ldd`); none for a static binary.
pub fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let out = std::process::Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(ClusterError::io("run ldd on", bin))?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no path and is skipped.
pub(crate) fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The container's entry script. It waits (bounded) for the harness to upload the
/// certificates, which can only be made once the container's address is known, then
/// runs etcd, kube-apiserver and kube-controller-manager and exits when the API
/// server does. Flags differ by Kubernetes version where old flags were removed.
///
/// `--enable-aggregator-routing=true` makes the API server call webhooks and
/// aggregated APIs referenced by Service at an address of the Service's Endpoints,
/// not at its ClusterIP: there is no kube-proxy, and a ClusterIP would go to the
/// default route. Tests point such Endpoints at addresses on the run's network.
///
/// The controller manager is restarted (a bounded number of times) when it exits: in
/// Kubernetes 1.20 it waits only 10 s for a healthy API server and then exits, which
/// several clusters starting at once on 2 loaded cores can exceed; without it no
/// `default` service account is ever made and the cluster never becomes ready.
///
/// `GOGC=300` for the API server: its start-up is allocation-heavy and CPU-bound, and
/// clusters started together share the machine's cores; less garbage collection
/// brought 3 clusters from ~1.45x to ~1.37x the time of one (`cargo xtask bench
/// clusters`, 2 cores) for ~0.5 GiB per cluster.
pub fn entrypoint_script(version: KubeVersion) -> String {
    const KCM_RESTARTS: u32 = 5;
    let insecure_off = if version.minor < 24 { " --insecure-port=0" } else { "" };
    let kcm_insecure_off = if version.minor < 22 { " --port=0" } else { "" };
    format!(
        r#"#!/bin/sh
# ecp-harness apiserver image: wait for {PKI_DIR}/ready, then run the control plane.
i=0
while [ ! -f {PKI_DIR}/ready ]; do
  i=$((i + 1))
  if [ "$i" -gt 1200 ]; then echo "entrypoint: no certificates after 120 s" >&2; exit 1; fi
  sleep 0.1
done
. {PKI_DIR}/env
echo "entrypoint: starting etcd, kube-apiserver ({version}) and kube-controller-manager on $ADVERTISE_ADDRESS"
etcd --data-dir=/var/lib/etcd \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=default=http://127.0.0.1:2380 --logger=zap --log-level=warn &
GOGC=300 kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$ADVERTISE_ADDRESS"{insecure_off} \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --tls-cert-file={PKI_DIR}/apiserver.crt --tls-private-key-file={PKI_DIR}/apiserver.key \
  --client-ca-file={PKI_DIR}/ca.crt --authorization-mode=RBAC --allow-privileged=true \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file={PKI_DIR}/sa.pub --service-account-signing-key-file={PKI_DIR}/sa.key \
  --enable-aggregator-routing=true --profiling=false &
APISERVER=$!
# The controller manager gives up when the API server is not healthy within 10 s,
# which happens when several clusters start on a loaded machine: restart it, at most
# {KCM_RESTARTS} times.
(
  n=0
  while :; do
    kube-controller-manager --kubeconfig={PKI_DIR}/controller-manager.kubeconfig \
      --controllers={CONTROLLERS} --leader-elect=false --use-service-account-credentials=false \
      --service-account-private-key-file={PKI_DIR}/sa.key --root-ca-file={PKI_DIR}/ca.crt \
      --secure-port=0{kcm_insecure_off} --profiling=false
    n=$((n + 1))
    if [ "$n" -gt {KCM_RESTARTS} ]; then echo "entrypoint: kube-controller-manager exited $n times; giving up" >&2; exit 1; fi
    echo "entrypoint: kube-controller-manager exited; restart $n of {KCM_RESTARTS}" >&2
    sleep 1
  done
) &
wait $APISERVER
echo "entrypoint: kube-apiserver exited" >&2
exit 1
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f42)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f43)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn script_drops_flags_removed_in_newer_versions() {
        let old = entrypoint_script(KubeVersion { major: 1, minor: 20, patch: 2 });
        assert!(old.contains("--insecure-port=0") && old.contains(" --port=0"));
        let new = entrypoint_script(KubeVersion { major: 1, minor: 30, patch: 0 });
        assert!(!new.contains("--insecure-port") && !new.contains(" --port=0"));
        insta::assert_snapshot!(old);
    }
}

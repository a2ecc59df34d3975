//! TEST STAND-INS on the run's `--internal` network: one image (no base image, built
//! locally) holding busybox (for `httpd`) and the suite's stand-in injection webhook
//! (`ecp-stand-in-injector`, a small HTTPS server serving a JSONPatch) with the
//! shared libraries it loads.

use std::net::IpAddr;
use std::path::Path;

use bollard::Docker;
use ecp_harness::cluster::{ApiserverRun, docker, image};
use sha2::{Digest, Sha256};

const BUSYBOX: &str = "/bin/busybox";
const INJECTOR: &str = env!("CARGO_BIN_EXE_ecp-stand-in-injector");

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    image::append_bytes(b, path, data, mode).unwrap_or_else(|e| panic!("{e}"));
}

/// The stand-in image, built once per content (tag = content hash).
pub async fn image(d: &Docker) -> String {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "Dockerfile", b"FROM scratch\nCOPY rootfs/ /\n", 0o644);
    append(&mut b, "rootfs/bin/busybox", &std::fs::read(BUSYBOX).unwrap(), 0o755);
    append(&mut b, "rootfs/www/hello", b"hello\n", 0o644);
    append(&mut b, "rootfs/certs/.keep", b"", 0o644);
    append(&mut b, "rootfs/stand-in-injector", &std::fs::read(INJECTOR).unwrap(), 0o755);
    for lib in image::shared_libraries(Path::new(INJECTOR)).unwrap() {
        let path = format!("rootfs{}", lib.display());
        append(&mut b, &path, &std::fs::read(&lib).unwrap(), 0o755);
    }
    let tag = format!("ecp-stand-ins:{}", &hex::encode(Sha256::digest(b.get_ref()))[..12]);
    if d.inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let context = b.into_inner().unwrap();
    let no_labels = std::collections::HashMap::new();
    image::build(d, &tag, context, &no_labels).await.unwrap_or_else(|e| panic!("{e}"));
    tag
}

/// Starts a stand-in container on the run's network, labelled with the run (removed
/// with it); returns its id and address.
pub async fn start(d: &Docker, run: &ApiserverRun, name: &str, cmd: &[&str]) -> (String, IpAddr) {
    let tag = image(d).await;
    let name = format!("ecp-{}-{name}", run.run_id());
    let spec = docker::ContainerSpec {
        name: &name,
        image: &tag,
        network: run.network(),
        labels: docker::labels(run.run_id(), "stand-in"),
        tmpfs: &[],
        cmd,
    };
    let id = docker::create_and_start(d, spec).await.unwrap();
    let ip = address(d, run, &id).await;
    (id, ip)
}

/// The container's address on the run's network.
pub async fn address(d: &Docker, run: &ApiserverRun, id: &str) -> IpAddr {
    docker::container_ip(d, id, run.network()).await.unwrap().expect("an address on the network")
}

/// Uploads the stand-in injector's certificate and key to `/certs`.
pub async fn upload_certificate(d: &Docker, id: &str, cert: &str, key: &str) {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "tls.crt", cert.as_bytes(), 0o644);
    append(&mut b, "tls.key", key.as_bytes(), 0o600);
    docker::upload_tar(d, id, "/certs", b.into_inner().unwrap()).await.unwrap();
}

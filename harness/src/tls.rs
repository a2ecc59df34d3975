//! The certificate of the control-plane gateway in the SIMPLE TLS variant
//! (procedure.md step 5): the external cluster's ingress gateway terminates TLS on
//! 15012 and 15017 with a certificate for `EXTERNAL_ISTIOD_ADDR`, read from the TLS
//! secret [`GATEWAY_TLS_SECRET`] in `istio-system`; proxies trust it through a CA
//! bundle (`XDS_ROOT_CA` / `CA_ROOT_CA`). The PASSTHROUGH variant needs none of this.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The gateway's `credentialName`: a `kubernetes.io/tls` Secret in `istio-system`.
pub const GATEWAY_TLS_SECRET: &str = "external-istiod-gateway-tls";

/// Common name of the CA the harness creates for the gateway.
pub const CA_COMMON_NAME: &str = "ecp-harness gateway CA";

/// How long the certificates are valid: long enough for a kept cluster, short enough
/// not to outlive it by years.
const VALIDITY: Duration = Duration::days(365);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the {what} for the control-plane gateway: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A CA and a server certificate it signed for the gateway's external address.
pub struct GatewayCerts {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    ca_key_pem: String,
    server_key_pem: String,
}

impl GatewayCerts {
    /// Creates a CA (`ecp-harness gateway CA`, may sign certificates) and a server
    /// certificate signed by it whose only subject alternative name is the IP
    /// `external_addr`, usable for server authentication.
    pub fn generate(external_addr: IpAddr) -> Result<Self, TlsError> {
        let generate = |what| move |source| TlsError::Generate { what, source };
        let now = OffsetDateTime::now_utc();

        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, CA_COMMON_NAME);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now - Duration::hours(1);
        ca_params.not_after = now + VALIDITY;
        let ca_key = KeyPair::generate().map_err(generate("CA key"))?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(generate("CA certificate"))?;

        let mut server_params = CertificateParams::default();
        server_params.distinguished_name = DistinguishedName::new();
        server_params.distinguished_name.push(DnType::CommonName, external_addr.to_string());
        server_params.subject_alt_names = vec![SanType::IpAddress(external_addr)];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        server_params.not_before = now - Duration::hours(1);
        server_params.not_after = now + VALIDITY;
        let server_key = KeyPair::generate().map_err(generate("server key"))?;
        let issuer = Issuer::new(ca_params, &ca_key);
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(generate("server certificate"))?;

        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            ca_key_pem: ca_key.serialize_pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    pub fn ca_key_pem(&self) -> &str {
        &self.ca_key_pem
    }

    /// The `kubernetes.io/tls` Secret the gateway reads (`tls.crt`, `tls.key`, and
    /// `ca.crt` for clients that want the bundle), as YAML. It holds a private key:
    /// apply it, never log it.
    pub fn tls_secret_manifest(&self, name: &str, namespace: &str) -> String {
        format!(
            "apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: {namespace}
type: kubernetes.io/tls
data:
  ca.crt: {ca}
  tls.crt: {crt}
  tls.key: {key}
",
            name = quoted(name),
            namespace = quoted(namespace),
            ca = BASE64.encode(&self.ca_cert_pem),
            crt = BASE64.encode(&self.server_cert_pem),
            key = BASE64.encode(&self.server_key_pem),
        )
    }

    /// Writes `ca.crt`, `ca.key`, `server.crt` and `server.key` into `dir`. The key
    /// files are created with mode 0600 (an existing file is replaced, so it never
    /// keeps a wider mode). Returns the paths written, in that order.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
        let files = [
            ("ca.crt", &self.ca_cert_pem, 0o644),
            ("ca.key", &self.ca_key_pem, 0o600),
            ("server.crt", &self.server_cert_pem, 0o644),
            ("server.key", &self.server_key_pem, 0o600),
        ];
        let mut written = Vec::with_capacity(files.len());
        for (file, contents, mode) in files {
            let path = dir.join(file);
            crate::files::write_new(&path, contents.as_bytes(), mode)
                .map_err(|source| TlsError::Write { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A YAML double-quoted scalar (a JSON string is one).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl fmt::Debug for GatewayCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCerts")
            .field("ca_cert_pem", &format_args!("<{} bytes>", self.ca_cert_pem.len()))
            .field("server_cert_pem", &format_args!("<{} bytes>", self.server_cert_pem.len()))
            .field("keys", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    const ADDR: &str = "172.18.6.66";

    fn certs() -> GatewayCerts {
        GatewayCerts::generate(ADDR.parse().unwrap()).unwrap()
    }

    /// Verifies the server certificate for `name` the way a rustls client trusting
    /// only our CA would.
    fn verify(certs: &GatewayCerts, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(certs.ca_cert_pem.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let server = CertificateDer::from_pem_slice(certs.server_cert_pem.as_bytes()).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier.verify_server_cert(&server, &[], &name, &[], UnixTime::now()).map(|_| ())
    }

    #[test]
    fn server_cert_verifies_for_the_external_ip_against_the_ca() {
        let certs = certs();
        verify(&certs, ADDR).unwrap();
    }

    #[test]
    fn server_cert_does_not_verify_for_another_ip_or_a_name() {
        let certs = certs();
        let err = verify(&certs, "172.18.6.67").unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");
        assert!(verify(&certs, "istiod.external-istiod.svc").is_err());
    }

    #[test]
    fn server_cert_does_not_verify_against_another_ca() {
        let ours = certs();
        let theirs = certs();
        let mixed = GatewayCerts { ca_cert_pem: theirs.ca_cert_pem.clone(), ..ours };
        assert!(verify(&mixed, ADDR).is_err());
    }

    #[test]
    fn ipv6_addresses_work_too() {
        let certs = GatewayCerts::generate("fd00::66".parse().unwrap()).unwrap();
        verify(&certs, "fd00::66").unwrap();
    }

    #[test]
    fn keys_are_distinct_pem_private_keys_kept_out_of_the_certs() {
        let certs = certs();
        assert!(certs.server_key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(certs.ca_key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(certs.server_key_pem(), certs.ca_key_pem());
        assert!(!certs.server_cert_pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn debug_never_prints_keys() {
        let certs = certs();
        let debug = format!("{certs:?} {certs:#?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(!debug.contains("BEGIN"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn files_are_written_with_private_keys_0600() {
        let dir = tempfile::tempdir().unwrap();
        let certs = certs();
        // A pre-existing world-readable key must not keep its mode.
        std::fs::write(dir.path().join("server.key"), "old").unwrap();
        std::fs::set_permissions(
            dir.path().join("server.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();

        let paths = certs.write_files(dir.path()).unwrap();
        let names: Vec<_> =
            paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["ca.crt", "ca.key", "server.crt", "server.key"]);
        for path in &paths {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let is_key = path.extension().unwrap() == "key";
            if is_key {
                assert_eq!(mode, 0o600, "{}", path.display());
            } else {
                assert_eq!(mode & !0o644, 0, "{}: {mode:o}", path.display());
                assert_eq!(mode & 0o600, 0o600, "{}: {mode:o}", path.display());
            }
        }
        let key = std::fs::read_to_string(dir.path().join("server.key")).unwrap();
        assert_eq!(key, certs.server_key_pem());
        let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
        assert_eq!(ca, certs.ca_cert_pem);
    }

    #[test]
    fn write_files_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("does-not-exist");
        let err = certs().write_files(&missing).unwrap_err();
        assert!(err.to_string().contains("does-not-exist/ca.crt"), "{err}");
    }

    #[derive(serde::Deserialize)]
    struct Secret {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        metadata: BTreeMap<String, String>,
        #[serde(rename = "type")]
        type_: String,
        data: BTreeMap<String, String>,
    }

    #[test]
    fn tls_secret_manifest_is_a_kubernetes_tls_secret() {
        let certs = certs();
        let yaml = certs.tls_secret_manifest(GATEWAY_TLS_SECRET, "istio-system");
        let secret: Secret = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(secret.api_version, "v1");
        assert_eq!(secret.kind, "Secret");
        assert_eq!(secret.metadata["name"], GATEWAY_TLS_SECRET);
        assert_eq!(secret.metadata["namespace"], "istio-system");
        assert_eq!(secret.type_, "kubernetes.io/tls");
        let decoded: BTreeMap<_, _> = secret
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), String::from_utf8(BASE64.decode(v).unwrap()).unwrap()))
            .collect();
        assert_eq!(decoded.keys().copied().collect::<Vec<_>>(), ["ca.crt", "tls.crt", "tls.key"]);
        assert_eq!(decoded["ca.crt"], certs.ca_cert_pem);
        assert_eq!(decoded["tls.crt"], certs.server_cert_pem);
        assert_eq!(decoded["tls.key"], certs.server_key_pem());
    }
}

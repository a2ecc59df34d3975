//! The certificates and keys of one control-plane-only cluster: its own CA, the API
//! server's serving certificate (valid for the container's address on the internal
//! network, the cluster's name, `kubernetes.default.svc...`, 127.0.0.1 and the first
//! service IP), an admin client certificate (group `system:masters`) and the
//! service-account signing key. All ECDSA P-256, made fresh per cluster and run.
//!
//! Private keys are kept in memory and written only into the cluster's container
//! and the kubeconfig files; `Debug` never prints them.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The identity the admin client certificate carries.
pub const ADMIN_USER: &str = "ecp-harness-admin";

/// PEM-encoded material of one cluster.
pub struct ClusterPki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    pub service_account_key_pem: String,
    /// The public half, PKIX `PUBLIC KEY` (what `--service-account-key-file` reads).
    pub service_account_pub_pem: String,
}

impl fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterPki").field("ca_cert_pem", &self.ca_cert_pem).finish_non_exhaustive()
    }
}

impl ClusterPki {
    /// Generates the material for cluster `name` whose API server listens on
    /// `address`; `service_ip` is the first address of its service range (the
    /// `kubernetes` Service).
    pub fn generate(name: &str, address: IpAddr, service_ip: IpAddr) -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = dn(&format!("ecp-harness {name} CA"), None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(vec![
            name.to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
            "localhost".to_string(),
        ])?;
        serving.subject_alt_names.extend([
            SanType::IpAddress(address),
            SanType::IpAddress(service_ip),
            SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        ]);
        serving.distinguished_name = dn("kube-apiserver", None);
        serving.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &issuer)?;

        let admin_key = KeyPair::generate()?;
        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin.distinguished_name = dn(ADMIN_USER, Some("system:masters"));
        admin.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            service_account_key_pem: sa_key.serialize_pem(),
            service_account_pub_pem: sa_key.public_key_pem(),
        })
    }
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_private_key() {
        let pki = ClusterPki::generate(
            "c1",
            "172.18.0.2".parse().unwrap(),
            "10.255.10.1".parse().unwrap(),
        )
        .unwrap();
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(pki.serving_key_pem.contains("PRIVATE KEY"));
        assert!(pki.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}

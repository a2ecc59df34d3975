//! Procedure steps 2 to 4: the config cluster carries the remote profile pointing at
//! the external istiod, and the external istiod runs without leaking webhooks into
//! the external cluster. The webhooks the config cluster calls are exactly one
//! fail-closed injector and both validators, all reaching the external istiod through
//! the external address with the CA it serves, and nobody rewrites them.

use std::time::Duration;

use ecp_harness::checks::Retry;
use ecp_harness::checks::provenance::{
    all_present, expected_webhook_ca, generations, generations_stable, injector_problems,
    single_injector, validator_problems,
};
use ecp_harness::install::{Check, Installer, WaitCondition};
use ecp_scenarios::{EXTERNAL_ISTIOD, TopologyFile, client, topology};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

/// The default tag's validator: the charts render it wherever `defaultRevision` is set,
/// which the procedure does for every revision (procedure.md "Distribution
/// overrides"); Sail installs Istio's `base` chart, which renders it on 1.24 and later,
/// only for a revision named `default`.
const DEFAULT_VALIDATOR: &str = "istiod-default-validator";
/// How long the webhook configurations are watched for rewrites (two istiods
/// fighting over them change their generation within seconds).
const OBSERVATION: Duration = Duration::from_secs(30);

#[tokio::test]
async fn config_cluster_has_the_external_istiods_webhooks() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    for check in [Check::injector_webhooks(), Check::validator_webhooks()] {
        let check = check.for_revision(t.revision());
        check.run(&config.name, &c, Retry::default()).await.unwrap();
    }
}

#[tokio::test]
async fn config_cluster_shares_the_mesh_config() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    for check in Check::mesh_config_maps(t.istio) {
        let check = check.for_revision(t.revision());
        check.run(&config.name, &c, Retry::default()).await.unwrap();
    }
}

#[tokio::test]
async fn istiod_service_points_at_the_external_gateway() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    // `istiod-<revision>` for a revision (Sail).
    let check = Check::istiod_address(t.istio, t.external_addr).for_revision(t.revision());
    check.run(&config.name, &c, Retry::default()).await.unwrap();
}

#[tokio::test]
async fn external_istiod_is_ready() {
    let t = topology();
    let external = t.external();
    let c = client(&t, external).await;
    WaitCondition::external_istiod_pods().check(&external.name, &c).await.unwrap();
}

/// istio/istio#37674: the external cluster's own webhooks must not point at the
/// external istiod.
#[tokio::test]
async fn external_clusters_webhooks_do_not_mention_external_istiod() {
    let t = topology();
    let external = t.external();
    let c = client(&t, external).await;
    let check = Check::webhooks_do_not_mention(EXTERNAL_ISTIOD);
    check.run(&external.name, &c, Retry::default()).await.unwrap();
}

async fn webhook_configurations(
    c: &kube::Client,
) -> (Vec<MutatingWebhookConfiguration>, Vec<ValidatingWebhookConfiguration>) {
    let lp = ListParams::default();
    let mutating = Api::<MutatingWebhookConfiguration>::all(c.clone()).list(&lp).await;
    let validating = Api::<ValidatingWebhookConfiguration>::all(c.clone()).list(&lp).await;
    match (mutating, validating) {
        (Ok(m), Ok(v)) => (m.items, v.items),
        (Err(e), _) | (_, Err(e)) => panic!("listing webhook configurations: {e}"),
    }
}

/// The CA the webhooks must carry: the mesh root the external istiod publishes on the
/// config cluster, which in the SIMPLE variant must be the harness's CA (the plan's
/// `<external>/tls/ca.crt`, written only in that variant).
async fn expected_ca(t: &TopologyFile, c: &kube::Client) -> String {
    let root = Api::<ConfigMap>::namespaced(c.clone(), EXTERNAL_ISTIOD)
        .get_opt("istio-ca-root-cert")
        .await
        .unwrap_or_else(|e| panic!("reading {EXTERNAL_ISTIOD}/istio-ca-root-cert: {e}"))
        .and_then(|m| m.data)
        .and_then(|d| d.get("root-cert.pem").cloned())
        .unwrap_or_else(|| panic!("{EXTERNAL_ISTIOD} has no istio-ca-root-cert root-cert.pem"));
    let harness_ca = ecp_scenarios::run_dir()
        .map(|d| d.join("plan").join(&t.external().name).join("tls").join("ca.crt"))
        .and_then(|path| std::fs::read_to_string(path).ok());
    expected_webhook_ca(&root, harness_ca.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn one_fail_closed_injector_and_both_validators_reach_the_external_istiod() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let addr = t.external_addr;
    // A webhook calling the `istiod` Service reaches the external address only if the
    // Service's endpoints are that address.
    let check = Check::istiod_address(t.istio, addr).for_revision(t.revision());
    check.run(&config.name, &c, Retry::default()).await.unwrap();
    let ca = expected_ca(&t, &c).await;
    let (mutating, validating) = webhook_configurations(&c).await;

    let injector = single_injector(&mutating).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = injector_problems(injector, EXTERNAL_ISTIOD, addr, &ca);
    let names: Vec<String> = validating.iter().filter_map(|v| v.metadata.name.clone()).collect();
    let validators = validators(&t);
    let required: Vec<&str> = match t.installer {
        Installer::Sail => validators[..1].iter().map(String::as_str).collect(),
        _ => validators.iter().map(String::as_str).collect(),
    };
    if let Err(e) = all_present(&names, &required) {
        problems.push(format!("validators {e}"));
    }
    // Every validator of the mesh that is there must reach the external istiod.
    for v in
        validating.iter().filter(|v| validators.iter().any(|n| v.metadata.name.as_ref() == Some(n)))
    {
        let name = v.metadata.name.as_deref().unwrap_or("");
        let found = validator_problems(v, EXTERNAL_ISTIOD, addr, &ca);
        problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The validating configurations of the run's revision: its own
/// (`istio-validator[-<revision>]-external-istiod`) and the default tag's.
fn validators(t: &TopologyFile) -> [String; 2] {
    [t.revision().webhook_config("istio-validator"), DEFAULT_VALIDATOR.to_string()]
}

/// Two istiods writing the same webhook configurations (a known failure of the
/// external model) show as generations that keep moving.
#[tokio::test]
async fn the_webhook_configurations_are_not_rewritten() {
    let t = topology();
    let c = client(&t, t.config()).await;
    let validators = validators(&t);
    let istio = |name: &Option<String>| {
        let name = name.as_deref().unwrap_or("");
        name.contains("external-istiod") || validators.iter().any(|v| v == name)
    };
    let observe = || async {
        let (mut mutating, mut validating) = webhook_configurations(&c).await;
        mutating.retain(|m| istio(&m.metadata.name));
        validating.retain(|v| istio(&v.metadata.name));
        generations(&mutating, &validating)
    };
    let before = observe().await;
    tokio::time::sleep(OBSERVATION).await;
    let after = observe().await;
    generations_stable(&before, &after).unwrap_or_else(|e| panic!("over {OBSERVATION:?}: {e}"));
}

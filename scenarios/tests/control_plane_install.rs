//! Procedure steps 2 to 4: the config cluster carries the remote profile pointing at
//! the external istiod, and the external istiod runs without leaking webhooks into
//! the external cluster.

use ecp_harness::execute::checks;
use ecp_scenarios::{EXTERNAL_ISTIOD, client, topology};

#[tokio::test]
async fn config_cluster_has_the_external_istiods_webhooks() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let injector = "istio-sidecar-injector-external-istiod";
    checks::webhook_configuration_exists(&config.name, &c, true, injector, 4).await.unwrap();
    let validator = "istio-validator-external-istiod";
    checks::webhook_configuration_exists(&config.name, &c, false, validator, 1).await.unwrap();
}

#[tokio::test]
async fn config_cluster_shares_the_mesh_config() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    checks::config_map_exists(&config.name, &c, EXTERNAL_ISTIOD, "istio").await.unwrap();
    if t.istio.renders_values_configmap() {
        checks::config_map_exists(&config.name, &c, EXTERNAL_ISTIOD, "values").await.unwrap();
    }
}

#[tokio::test]
async fn istiod_service_points_at_the_external_gateway() {
    let t = topology();
    let config = t.config();
    let c = client(&t, config).await;
    let objects = t.istio.istiod_address_objects();
    checks::istiod_address(&config.name, &c, EXTERNAL_ISTIOD, objects, t.external_addr)
        .await
        .unwrap();
}

#[tokio::test]
async fn external_istiod_is_ready() {
    let t = topology();
    let external = t.external();
    let c = client(&t, external).await;
    checks::pods_ready(&external.name, &c, EXTERNAL_ISTIOD, "app=istiod", 1, false).await.unwrap();
}

/// istio/istio#37674: the external cluster's own webhooks must not point at the
/// external istiod.
#[tokio::test]
async fn external_clusters_webhooks_do_not_mention_external_istiod() {
    let t = topology();
    let external = t.external();
    let c = client(&t, external).await;
    checks::webhooks_do_not_mention(&external.name, &c, EXTERNAL_ISTIOD).await.unwrap();
}

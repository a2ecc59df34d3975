//! Several meshes on one external cluster (procedure.md "Several meshes on one
//! external cluster"): snapshots of two meshes per installer, and that no two meshes
//! of any plan share a gateway port, a webhook configuration, a namespace of the
//! external cluster or a cluster.

use super::*;
use crate::mesh::{MAX_MESHES, Mesh};

fn meshes_opts(installer: Installer, version: &str, meshes: usize, remotes: usize) -> PlanOptions {
    PlanOptions { meshes, ..opts(installer, version, remotes, GatewayTls::Passthrough) }
}

/// Two meshes of two remotes each (every step per mesh), on the last release with
/// `Endpoints` and on the newest.
#[rstest]
fn two_mesh_plan_snapshots(
    #[values(Installer::Istioctl, Installer::Helm)] installer: Installer,
    #[values("1.27.9", "1.31.0")] version: &str,
) {
    let p = plan(&meshes_opts(installer, version, 2, 2)).unwrap();
    let name =
        format!("plan_{}_{}_2_meshes_2_remotes", installer.name(), version.replace('.', "_"));
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!(name, snapshot_text(&p));
    });
}

/// The mesh a step of steps 2 to 8 is planned for: its cluster's, or on the external
/// cluster the suffix of its id (`-mesh<k>`).
fn mesh_of(p: &Plan, step: &Step) -> Mesh {
    let cluster = p.topology.by_name(&step.cluster).expect("a step's cluster is in the topology");
    if cluster.role != crate::topology::Role::External {
        return cluster.mesh;
    }
    step.id
        .rsplit_once("-mesh")
        .and_then(|(_, k)| k.parse().ok())
        .and_then(Mesh::new)
        .unwrap_or(Mesh::FIRST)
}

/// What each mesh of a plan holds: gateway ports (its Gateway's servers), webhook
/// configurations (checked or named in its istiod's env), namespaces on the external
/// cluster, clusters.
#[derive(Default)]
struct Held {
    ports: BTreeSet<u64>,
    webhooks: BTreeSet<String>,
    external_namespaces: BTreeSet<String>,
    clusters: BTreeSet<String>,
}

fn held_by_mesh(p: &Plan) -> BTreeMap<Mesh, Held> {
    let external = p.topology.external().name.clone();
    let mut held: BTreeMap<Mesh, Held> = BTreeMap::new();
    for s in p.steps.iter().filter(|s| (2..=8).contains(&s.number)) {
        let h = held.entry(mesh_of(p, s)).or_default();
        if s.cluster != external {
            h.clusters.insert(s.cluster.clone());
        }
        for a in &s.actions {
            match a {
                Action::CreateNamespace { name, .. } if s.cluster == external => {
                    h.external_namespaces.insert(name.clone());
                }
                Action::Verify { check: Check::WebhookConfigurationExists { name, .. } } => {
                    h.webhooks.insert(name.clone());
                }
                Action::Apply { file, .. } if file.ends_with("external-istiod-gw.yaml") => {
                    let docs: Vec<Value> =
                        serde_saphyr::from_multiple(&p.file(file).unwrap().contents).unwrap();
                    for d in docs.iter().filter(|d| d["kind"] == "Gateway") {
                        for server in d["spec"]["servers"].as_array().unwrap() {
                            h.ports.insert(server["port"]["number"].as_u64().unwrap());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // The webhook names each istiod patches (`pilot.env`), from its files.
    for f in p.files.iter().filter(|f| f.path.starts_with(&format!("{external}/"))) {
        let mesh = f
            .path
            .split('/')
            .nth(1)
            .and_then(|dir| dir.strip_prefix("mesh"))
            .and_then(|k| k.parse().ok())
            .and_then(Mesh::new)
            .unwrap_or(Mesh::FIRST);
        for line in f.contents.lines() {
            let line = line.trim();
            for key in ["INJECTION_WEBHOOK_CONFIG_NAME: ", "VALIDATION_WEBHOOK_CONFIG_NAME: "] {
                if let Some(name) = line.strip_prefix(key) {
                    held.entry(mesh).or_default().webhooks.insert(name.to_string());
                }
            }
        }
    }
    held
}

fn assert_disjoint<T: Ord + std::fmt::Debug>(
    what: &str,
    held: &BTreeMap<Mesh, Held>,
    get: impl Fn(&Held) -> &BTreeSet<T>,
) {
    let meshes: Vec<(&Mesh, &Held)> = held.iter().collect();
    for (i, (a, ha)) in meshes.iter().enumerate() {
        assert!(!get(ha).is_empty(), "{a} holds no {what}");
        for (b, hb) in &meshes[i + 1..] {
            let shared: Vec<&T> = get(ha).intersection(get(hb)).collect();
            assert!(shared.is_empty(), "{a} and {b} share {what}: {shared:?}");
        }
    }
}

/// The check: for every mesh count the scheme holds, with both installers,
/// no two meshes share a port, a webhook configuration, a namespace or a cluster.
#[test]
fn no_two_meshes_share_a_port_webhook_namespace_or_cluster() {
    for installer in [Installer::Istioctl, Installer::Helm] {
        for meshes in 2..=MAX_MESHES {
            for remotes in (1..=crate::topology::MAX_REMOTES / meshes).take(2) {
                let p = plan(&meshes_opts(installer, "1.30.4", meshes, remotes)).unwrap();
                let held = held_by_mesh(&p);
                assert_eq!(held.len(), meshes, "{meshes} meshes planned");
                assert_disjoint("gateway ports", &held, |h| &h.ports);
                assert_disjoint("webhook configurations", &held, |h| &h.webhooks);
                assert_disjoint("external namespaces", &held, |h| &h.external_namespaces);
                assert_disjoint("clusters", &held, |h| &h.clusters);
                let ids: BTreeSet<&str> =
                    p.topology.clusters.iter().map(|c| c.cluster_id.as_str()).collect();
                assert_eq!(ids.len(), p.topology.clusters.len(), "cluster IDs are unique");
                // Each mesh's ports are on the control-plane gateway's Service.
                let gateway = p
                    .files
                    .iter()
                    .find(|f| f.path.starts_with("external/controlplane-gateway"))
                    .unwrap();
                for h in held.values() {
                    for port in &h.ports {
                        assert!(gateway.contents.contains(&format!("port: {port}")), "{port}");
                    }
                }
            }
        }
    }
}

/// A mesh after the first: its istiod's values name its namespace, mesh ID, ports
/// and webhooks; its remote profile sets no `remotePilotAddress` (the chart's
/// address object would carry the first mesh's ports) and gets the harness's own
/// `istiod` Service at its ports instead.
#[test]
fn a_later_mesh_points_at_its_own_ports() {
    let p = plan(&meshes_opts(Installer::Istioctl, "1.30.4", 2, 1)).unwrap();
    let istiod = &p.file("external/mesh2/istiod.yaml").unwrap().contents;
    for v in [
        "namespace: external-istiod-mesh2",
        "meshID: mesh2",
        "clusterName: mesh2-remote1",
        "discoveryAddress: 192.0.2.10:16022",
        "caAddress: 192.0.2.10:16022",
        "INJECTION_WEBHOOK_CONFIG_NAME: istio-sidecar-injector-external-istiod-mesh2",
        "rootNamespace: external-istiod-mesh2",
    ] {
        assert!(istiod.contains(v), "{v} missing:\n{istiod}");
    }
    let profile = &p.file("mesh2-config/remote-config-cluster.yaml").unwrap().contents;
    assert!(profile.contains("injectionPath: /inject/cluster/mesh2-remote1/net/mesh2-network1"));
    assert!(profile.contains("istioNamespace: external-istiod-mesh2"), "{profile}");
    assert!(!profile.contains("remotePilotAddress"), "{profile}");
    let first = &p.file("config/remote-config-cluster.yaml").unwrap().contents;
    assert!(first.contains("remotePilotAddress"), "the first mesh keeps the guide's values");
    let service = &p.file("mesh2-config/istiod-service.yaml").unwrap().contents;
    let docs: Vec<Value> = serde_saphyr::from_multiple(service).unwrap();
    assert_eq!(docs[0]["kind"], "Service");
    assert_eq!(docs[1]["kind"], "EndpointSlice", "1.30 renders an EndpointSlice");
    assert_eq!(docs[1]["metadata"]["namespace"], "external-istiod-mesh2");
    assert_eq!(docs[1]["endpoints"][0]["addresses"][0], "192.0.2.10");
    let ports: Vec<u64> =
        docs[1]["ports"].as_array().unwrap().iter().map(|p| p["port"].as_u64().unwrap()).collect();
    assert_eq!(ports, [16022, 16027]);
    let check = p
        .steps
        .iter()
        .flat_map(|s| &s.actions)
        .find_map(|a| match a {
            Action::Verify { check: Check::IstiodAddress { namespace, ports, .. } }
                if namespace == "external-istiod-mesh2" =>
            {
                Some(*ports)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(check, [16022, 16027]);
    let gw = &p.file("external/mesh2/external-istiod-gw.yaml").unwrap().contents;
    assert!(gw.contains("host: istiod.external-istiod-mesh2.svc.cluster.local"), "{gw}");
    // Before 1.28, the address object is an Endpoints object.
    let old = plan(&meshes_opts(Installer::Helm, "1.27.9", 2, 1)).unwrap();
    let service = &old.file("mesh2-config/istiod-service.yaml").unwrap().contents;
    assert!(service.contains("kind: Endpoints"), "{service}");
}

/// One mesh is the guide's plan: nothing is named after a mesh.
#[test]
fn one_mesh_names_nothing_after_a_mesh() {
    let p = plan_for(Installer::Helm, "1.30.4", 2);
    assert!(!p.to_json().contains("mesh2"));
    assert!(!p.render_text().contains("16022"));
    assert!(p.files.iter().all(|f| !f.path.contains("mesh")), "no mesh directories");
}

#[test]
fn mesh_counts_and_variants_not_built_are_refused() {
    let o = |meshes| meshes_opts(Installer::Istioctl, "1.30.4", meshes, 1);
    let err = plan(&o(0)).unwrap_err().to_string();
    assert!(err.contains("--meshes must be between 1 and 8"), "{err}");
    let err = plan(&o(MAX_MESHES + 1)).unwrap_err().to_string();
    assert!(err.contains("--meshes must be between 1 and 8"), "{err}");
    let err = plan(&PlanOptions { remotes: 5, ..o(2) }).unwrap_err().to_string();
    assert!(err.contains("10 remote clusters"), "{err}");
    let err = plan(&PlanOptions { installer: Installer::Sail, ..o(2) }).unwrap_err().to_string();
    assert!(err.contains("--installer sail"), "{err}");
    let err =
        plan(&PlanOptions { gateway_tls: GatewayTls::Simple, ..o(2) }).unwrap_err().to_string();
    assert!(err.contains("--gateway-tls simple"), "{err}");
}

/// `--revision` and `--meshes` combine: a later mesh's webhooks and istiod Service
/// carry the revision as well as the mesh's namespace.
#[test]
fn a_revision_names_every_meshs_objects() {
    let mut o = meshes_opts(Installer::Helm, "1.30.4", 2, 1);
    o.overrides.revision = Some("canary".into());
    let p = plan(&o).unwrap();
    let istiod = &p.file("external/mesh2/istiod-values.yaml").unwrap().contents;
    assert!(
        istiod.contains(
            "INJECTION_WEBHOOK_CONFIG_NAME: istio-sidecar-injector-canary-external-istiod-mesh2"
        ),
        "{istiod}"
    );
    let service = &p.file("mesh2-config/istiod-service.yaml").unwrap().contents;
    assert!(service.contains("name: istiod-canary"), "{service}");
    let held = held_by_mesh(&p);
    assert_disjoint("webhook configurations", &held, |h| &h.webhooks);
}

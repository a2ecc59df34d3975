//! Istio's samples as this project's own fixtures (procedure.md steps 6 to 8): the
//! helloworld Service and Deployments, the in-mesh client (`sleep`, later `curl`),
//! and helloworld's ingress Gateway and VirtualService. The templates live in
//! `fixtures/samples/` with `${NAME}` placeholders; the facts they encode are in
//! istio-release.md ("Images").

use serde::Serialize;

use crate::version::IstioVersion;

const HELLOWORLD_SERVICE: &str = include_str!("../../fixtures/samples/helloworld-service.yaml");
const HELLOWORLD_DEPLOYMENT: &str =
    include_str!("../../fixtures/samples/helloworld-deployment.yaml");
const CLIENT: &str = include_str!("../../fixtures/samples/client.yaml");
const HELLOWORLD_GATEWAY: &str = include_str!("../../fixtures/samples/helloworld-gateway.yaml");

/// The helloworld image tag every supported release's sample uses.
pub const HELLOWORLD_TAG: &str = "1.0";

/// Where the sample images come from. Vendors override the hub and tag.
#[derive(Clone, Debug, Serialize)]
pub struct SampleImages {
    /// Hub of the helloworld images, e.g. `docker.io/istio`.
    pub hub: String,
    /// Tag of the helloworld images, `1.0` upstream.
    pub tag: String,
    /// The client's full image reference.
    pub client_image: String,
}

impl SampleImages {
    /// The images the release's own samples name: the release's default hub,
    /// helloworld tag `1.0`, and the client image of that release.
    pub fn for_version(v: IstioVersion) -> Self {
        Self {
            hub: v.default_hub().to_string(),
            tag: HELLOWORLD_TAG.to_string(),
            client_image: v.client_image().to_string(),
        }
    }

    pub fn with_hub(self, hub: &str) -> Self {
        Self { hub: hub.trim_end_matches('/').to_string(), ..self }
    }

    pub fn with_tag(self, tag: &str) -> Self {
        Self { tag: tag.to_string(), ..self }
    }

    /// `<hub>/examples-helloworld-<version>:<tag>`.
    pub fn helloworld_image(&self, version: &str) -> String {
        format!("{}/examples-helloworld-{version}:{}", self.hub, self.tag)
    }
}

/// The `helloworld` Service (port 5000, named `http`).
pub fn helloworld_service() -> String {
    render(HELLOWORLD_SERVICE, &[])
}

/// Deployment `helloworld-<version>` (`version` is `v1` or `v2`).
pub fn helloworld_deployment(version: &str, images: &SampleImages) -> String {
    let image = images.helloworld_image(version);
    render(HELLOWORLD_DEPLOYMENT, &[("VERSION", version), ("HELLOWORLD_IMAGE", &image)])
}

/// The client sample of `istio`'s release: its name (`sleep` or `curl`, which is also
/// its Deployment, Service, ServiceAccount and `app` label) and its manifest.
pub fn client(istio: IstioVersion, images: &SampleImages) -> (&'static str, String) {
    let name = istio.client_sample();
    let manifest =
        render(CLIENT, &[("CLIENT_NAME", name), ("CLIENT_IMAGE", images.client_image.as_str())]);
    (name, manifest)
}

/// Gateway `helloworld-gateway` and VirtualService `helloworld`: two documents.
pub fn helloworld_gateway() -> String {
    render(HELLOWORLD_GATEWAY, &[])
}

/// Replaces every `${NAME}` of `vars` in `template`. A placeholder left over is a bug
/// in this module (a template and its caller disagree): debug builds panic on it,
/// and the tests render every template.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    debug_assert!(!out.contains("${"), "unfilled placeholder in sample:\n{out}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    /// Parses every document; asserts nothing is left to fill.
    fn docs(yaml: &str) -> Vec<serde_json::Value> {
        assert!(!yaml.contains("${"), "unfilled placeholder:\n{yaml}");
        serde_saphyr::from_multiple(yaml).unwrap()
    }

    #[test]
    fn render_fills_every_occurrence_and_leaves_other_text() {
        let out = render("a: ${X}\nb: ${X}-${Y}\n", &[("X", "1"), ("Y", "two")]);
        assert_eq!(out, "a: 1\nb: 1-two\n");
    }

    #[test]
    #[should_panic(expected = "unfilled placeholder")]
    fn render_panics_on_a_leftover_placeholder() {
        render("image: ${HELLOWORLD_IMAGE}\n", &[("VERSION", "v1")]);
    }

    #[test]
    fn images_follow_the_release() {
        let old = SampleImages::for_version(v("1.29.6"));
        assert_eq!(old.helloworld_image("v1"), "docker.io/istio/examples-helloworld-v1:1.0");
        assert_eq!(old.client_image, "docker.io/curlimages/curl:8.16.0");
        let new = SampleImages::for_version(v("1.30.3"));
        assert_eq!(
            new.helloworld_image("v2"),
            "registry.istio.io/release/examples-helloworld-v2:1.0"
        );
        let vendor = new.with_hub("quay.io/vendor/").with_tag("1.0-vendor");
        assert_eq!(
            vendor.helloworld_image("v1"),
            "quay.io/vendor/examples-helloworld-v1:1.0-vendor"
        );
    }

    #[test]
    fn service_selects_all_versions_on_port_5000() {
        let d = docs(&helloworld_service());
        assert_eq!(d.len(), 1);
        let s = &d[0];
        assert_eq!(s["kind"], "Service");
        assert_eq!(s["metadata"]["name"], "helloworld");
        assert_eq!(s["metadata"]["labels"]["app"], "helloworld");
        assert_eq!(s["metadata"]["labels"]["service"], "helloworld");
        assert_eq!(s["spec"]["selector"], serde_json::json!({"app": "helloworld"}));
        assert_eq!(s["spec"]["ports"][0]["name"], "http");
        assert_eq!(s["spec"]["ports"][0]["port"], 5000);
    }

    #[test]
    fn deployments_carry_version_labels_and_images() {
        let images = SampleImages::for_version(v("1.24.6"));
        for version in ["v1", "v2"] {
            let d = docs(&helloworld_deployment(version, &images));
            assert_eq!(d.len(), 1);
            let dep = &d[0];
            assert_eq!(dep["kind"], "Deployment");
            assert_eq!(dep["metadata"]["name"], format!("helloworld-{version}"));
            let labels = &dep["spec"]["template"]["metadata"]["labels"];
            assert_eq!(labels["app"], "helloworld");
            assert_eq!(labels["version"], version);
            assert_eq!(dep["spec"]["selector"]["matchLabels"], *labels);
            let c = &dep["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(
                c["image"],
                format!("docker.io/istio/examples-helloworld-{version}:1.0").as_str()
            );
            assert_eq!(c["ports"][0]["containerPort"], 5000);
        }
    }

    #[test]
    fn client_is_sleep_before_1_24_and_curl_after() {
        for (istio, expected) in [("1.22.8", "sleep"), ("1.23.6", "sleep"), ("1.24.0", "curl")] {
            let istio = v(istio);
            let (name, yaml) = client(istio, &SampleImages::for_version(istio));
            assert_eq!(name, expected);
            let d = docs(&yaml);
            let kinds: Vec<_> = d.iter().map(|o| o["kind"].as_str().unwrap()).collect();
            assert_eq!(kinds, ["ServiceAccount", "Service", "Deployment"]);
            assert!(d.iter().all(|o| o["metadata"]["name"] == name));
            assert_eq!(d[1]["spec"]["ports"][0]["port"], 80);
            let pod = &d[2]["spec"]["template"]["spec"];
            assert_eq!(pod["serviceAccountName"], name);
            assert_eq!(pod["containers"][0]["image"], istio.client_image());
            assert_eq!(
                pod["containers"][0]["command"],
                serde_json::json!(["/bin/sleep", "infinity"])
            );
            assert_eq!(d[2]["spec"]["template"]["metadata"]["labels"]["app"], name);
        }
    }

    #[test]
    fn gateway_routes_hello_to_helloworld() {
        let d = docs(&helloworld_gateway());
        assert_eq!(d.len(), 2);
        let (gw, vs) = (&d[0], &d[1]);
        assert_eq!(gw["kind"], "Gateway");
        assert_eq!(gw["metadata"]["name"], "helloworld-gateway");
        assert_eq!(gw["spec"]["selector"]["istio"], "ingressgateway");
        let server = &gw["spec"]["servers"][0];
        assert_eq!(server["port"]["number"], 80);
        assert_eq!(server["port"]["protocol"], "HTTP");
        assert_eq!(server["hosts"], serde_json::json!(["*"]));
        assert_eq!(vs["kind"], "VirtualService");
        assert_eq!(vs["metadata"]["name"], "helloworld");
        assert_eq!(vs["spec"]["gateways"], serde_json::json!(["helloworld-gateway"]));
        let route = &vs["spec"]["http"][0];
        assert_eq!(route["match"][0]["uri"]["exact"], "/hello");
        assert_eq!(route["route"][0]["destination"]["host"], "helloworld");
        assert_eq!(route["route"][0]["destination"]["port"]["number"], 5000);
    }

    #[test]
    fn snapshots() {
        let images = SampleImages::for_version(v("1.30.3"));
        insta::assert_snapshot!("helloworld_service", helloworld_service());
        insta::assert_snapshot!("helloworld_v1", helloworld_deployment("v1", &images));
        insta::assert_snapshot!("helloworld_v2", helloworld_deployment("v2", &images));
        insta::assert_snapshot!("helloworld_gateway", helloworld_gateway());
        for istio in ["1.23.6", "1.30.3"] {
            let istio = v(istio);
            let (name, yaml) = client(istio, &SampleImages::for_version(istio));
            insta::assert_snapshot!(format!("client_{name}_{}_{}", istio.major, istio.minor), yaml);
        }
    }
}

//! The suite's preflight: everything every version needs, checked in seconds, all
//! problems at once, before anything is created. The provider checks its own part
//! (Docker and node images for kind; reachability, versions and permissions for
//! existing clusters); the suite checks the plans, the programs and releases the
//! installer backend declares, its repositories, and (where the provider loads them)
//! the images.

use std::collections::BTreeMap;

use super::{ProviderFacts, SuiteOptions};
use crate::cluster::{Provider, docker};
use crate::execute::command::Programs;
use crate::execute::preflight as checks;
use crate::install::{self, Installer, OperatorSource, Plan, sail};
use crate::istio::release::ReleaseSource;
use crate::preflight::{Problem, ProblemKind};
use crate::samples::SampleImages;
use crate::version::IstioVersion;

/// What the preflight established for one version.
pub struct Prepared<P> {
    pub version: IstioVersion,
    pub provider: P,
    pub plan: Plan,
    pub programs: Programs,
}

/// Checks every version; the prepared versions, or every problem found.
pub async fn preflight_all<P, F>(
    s: &SuiteOptions,
    providers: F,
) -> Result<Vec<Prepared<P>>, Vec<Problem>>
where
    P: Provider,
    F: Fn(IstioVersion) -> Result<P, Problem>,
{
    let mut problems = Vec::new();
    let source = match ReleaseSource::from_env() {
        Ok(source) => Some(source),
        Err(e) => {
            problems.push(Problem::new(ProblemKind::Release, e.to_string(), ""));
            None
        }
    };
    let mut capabilities = None;
    let mut docker_ok = true;
    let mut prepared = Vec::new();
    for v in &s.versions {
        let provider = match providers(*v) {
            Ok(p) => Some(p),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let facts = match &provider {
            Some(p) => provider_facts(s, p).await,
            None => ProviderFacts::default(),
        };
        let plan = match install::plan(&s.plan_options(*v, facts)) {
            Ok(plan) => plan,
            Err(e) => {
                problems.push(Problem::new(
                    ProblemKind::Planning,
                    format!("Istio {v}: planning: {e}"),
                    "",
                ));
                continue;
            }
        };
        // The provider's own part: it sees the plan (what is installed where).
        let provider = match provider {
            Some(p) => {
                if docker_ok {
                    let found = p.preflight(&plan).await;
                    // Every version would say the same about Docker.
                    docker_ok = !found.iter().any(|p| p.kind == ProblemKind::Docker);
                    problems.extend(found);
                }
                capabilities.get_or_insert(p.capabilities());
                Some(p)
            }
            None => None,
        };
        let needs = plan.options.needs();
        for repo in &needs.repositories {
            if let Err(why) = checks::host_reachable(&repo.host, 443, checks::REACH_TIMEOUT).await {
                problems.push(Problem::new(
                    ProblemKind::Repository,
                    format!(
                        "Istio {v}: {} installs {} from {} ({why})",
                        s.installer, repo.what, repo.url
                    ),
                    "run where it is reachable, or use --installer istioctl",
                ));
            }
        }
        let Some(source) = &source else { continue };
        match checks::programs(*v, &needs, s.istioctl.as_deref(), s.helm.as_deref(), source).await {
            Ok((programs, _)) => {
                if let Some(provider) = provider {
                    prepared.push(Prepared { version: *v, provider, plan, programs });
                }
            }
            Err(found) => problems.extend(found),
        }
    }
    let capabilities = capabilities.unwrap_or_default();

    if docker_ok && capabilities.load_images {
        let mut images: Vec<String> = s.versions.iter().flat_map(|v| images_for(s, *v)).collect();
        images.sort();
        images.dedup();
        problems.extend(image_problems(&images).await);
    }

    if problems.is_empty() && prepared.len() == s.versions.len() {
        Ok(prepared)
    } else {
        crate::preflight::dedup(&mut problems);
        Err(problems)
    }
}

/// What `provider` says about its clusters for the plan. Only a Sail plan asks
/// whether they are OpenShift (its CNI follows).
async fn provider_facts<P: Provider>(s: &SuiteOptions, provider: &P) -> ProviderFacts {
    let operator = if provider.capabilities().install_operators {
        OperatorSource::Helm
    } else {
        OperatorSource::Preinstalled
    };
    let openshift = s.installer == Installer::Sail && provider.openshift().await;
    ProviderFacts { external_addr: provider.external_address(), operator, openshift }
}

/// Istio's and the samples' images of a version's run (what a provider that loads
/// images loads; what the clusters must pull otherwise). With `--installer sail` also
/// the operator's (the plan installs it where images are loaded: kind) and, with
/// `--cni`, the CNI agent's.
pub fn images_for(s: &SuiteOptions, v: IstioVersion) -> Vec<String> {
    let mut images = checks::istio_images(v, s.hub.as_deref(), s.tag.as_deref());
    if s.installer == Installer::Sail {
        images.extend(sail::operator_image(v));
        if s.cni {
            images.push(sail::cni_image(&s.plan_options(v, ProviderFacts::default())));
        }
    }
    let mut samples = SampleImages::for_version(v);
    if let Some(hub) = &s.hub {
        samples = samples.with_hub(hub);
    }
    images.push(samples.helloworld_image("v1"));
    if s.remotes >= 2 {
        images.push(samples.helloworld_image("v2"));
    }
    images.push(samples.client_image.clone());
    images
}

/// Images missing locally whose registry does not answer, grouped by registry.
pub async fn image_problems(images: &[String]) -> Vec<Problem> {
    let docker = match docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            return vec![Problem::new(
                ProblemKind::Docker,
                format!("Docker is not reachable: {e}"),
                "",
            )];
        }
    };
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for image in images {
        let reference = crate::cluster::kind::images::with_default_tag(image);
        if docker.inspect_image(&reference).await.is_err() {
            missing.entry(checks::registry_host(image)).or_default().push(image.clone());
        }
    }
    let mut problems = Vec::new();
    for (host, images) in missing {
        if let Err(why) = checks::host_reachable(&host, 443, checks::REACH_TIMEOUT).await {
            problems.push(checks::missing_images_problem(&images, &host, &why));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Requested, ScenarioRunner};

    fn options(version: &str, remotes: usize, hub: Option<&str>) -> SuiteOptions {
        let r = Requested {
            remotes,
            hub: hub.map(String::from),
            ..Requested::new(vec![version.into()])
        };
        with(r)
    }

    fn with(r: Requested) -> SuiteOptions {
        let runner =
            ScenarioRunner { cargo: "cargo".into(), workspace: ".".into(), target_dir: "t".into() };
        SuiteOptions::new(r, runner).map(|(o, _)| o).expect("valid options")
    }

    #[test]
    fn images_cover_istio_and_the_samples() {
        let s = options("1.29.6", 2, None);
        assert_eq!(
            images_for(&s, s.versions[0]),
            [
                "docker.io/istio/pilot:1.29.6",
                "docker.io/istio/proxyv2:1.29.6",
                "docker.io/istio/examples-helloworld-v1:1.0",
                "docker.io/istio/examples-helloworld-v2:1.0",
                "docker.io/curlimages/curl:8.16.0",
            ]
        );
        let s = options("1.23.6", 1, Some("my.reg/istio"));
        let images = images_for(&s, s.versions[0]);
        assert_eq!(images[0], "my.reg/istio/pilot:1.23.6");
        assert_eq!(images[2], "my.reg/istio/examples-helloworld-v1:1.0");
        assert_eq!(images[3], "curlimages/curl", "the client image keeps its own registry");
    }

    /// Sail on kind: the operator of the release the table picks is loaded like
    /// Istio's images, and the CNI agent's with `--cni`, from the same hub and tag.
    #[test]
    fn sail_adds_the_operator_and_with_cni_the_cni_image() {
        let sail = |cni: bool, hub: Option<&str>| {
            let r = Requested {
                installer: Installer::Sail,
                cni,
                hub: hub.map(String::from),
                ..Requested::new(vec!["1.27.9".into()])
            };
            let s = with(r);
            images_for(&s, s.versions[0])
        };
        let images = sail(false, None);
        assert!(
            images.contains(&"quay.io/sail-dev/sail-operator:1.29.2".to_string()),
            "{images:?}"
        );
        assert!(!images.iter().any(|i| i.contains("install-cni")), "{images:?}");
        let images = sail(true, Some("my.reg/istio/"));
        assert!(images.contains(&"my.reg/istio/install-cni:1.27.9".to_string()), "{images:?}");
        assert!(images.contains(&"my.reg/istio/pilot:1.27.9".to_string()), "{images:?}");
        let istioctl = options("1.27.9", 1, None);
        let images = images_for(&istioctl, istioctl.versions[0]);
        assert!(!images.iter().any(|i| i.contains("sail-operator")), "{images:?}");
    }
}

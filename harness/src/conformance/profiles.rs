//! Conformance profiles (docs/report.md "Profiles"): `core` is what every external
//! control plane install must do; `extended` adds several remotes, SIMPLE TLS at the
//! control-plane gateway and the Sail operator backend. Which scenario belongs to
//! which profile is the one table in [`crate::suite::scenarios::SCENARIOS`].

use serde::{Deserialize, Serialize};

use crate::install::{GatewayTls, Installer};
use crate::suite::scenarios::SCENARIOS;

/// A conformance profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Install, injection, in-mesh and ingress traffic, validation, outage.
    Core,
    /// Several remotes (`multi_remote`) and several meshes on one external cluster
    /// (`multi_mesh`), run with `--gateway-tls simple` and `--installer sail`, on top
    /// of `core` in the same run.
    Extended,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Core, Profile::Extended];

    pub fn name(self) -> &'static str {
        match self {
            Self::Core => "core",
            Self::Extended => "extended",
        }
    }

    /// The scenarios (test files) of this profile, in the procedure's order.
    pub fn scenarios(self) -> Vec<&'static str> {
        SCENARIOS.iter().filter(|s| s.profile == self).map(|s| s.name).collect()
    }

    /// What the run itself must have been for this profile, beyond its scenarios:
    /// `extended` needs the SIMPLE gateway and the Sail backend.
    fn run_problems(self, run: &RunFacts) -> Vec<String> {
        let mut problems = Vec::new();
        if self == Self::Extended {
            if run.gateway_tls != GatewayTls::Simple {
                problems.push("the run's gateway TLS is not simple (--gateway-tls simple)".into());
            }
            if run.installer != Installer::Sail {
                problems.push(format!(
                    "the run's installer is {}, not sail (--installer sail)",
                    run.installer.name()
                ));
            }
        }
        problems
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How one test of a scenario ended, as profiles see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed, or flaky (passed on a retry).
    Passed,
    Failed,
    NotRun,
}

/// What a profile is judged on: the run's properties and every test result
/// (`<scenario>::<test>`).
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub installer: Installer,
    pub gateway_tls: GatewayTls,
    /// Every install step succeeded and the run reached its scenarios.
    pub install_passed: bool,
    pub tests: Vec<(String, Outcome)>,
}

/// A profile's verdict for one Istio version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileResult {
    pub profile: Profile,
    /// At least one test of one of its scenarios ran.
    pub run: bool,
    /// Every scenario of the profile ran and passed, and the run's properties hold.
    pub passed: bool,
    /// Why it did not pass, one line each.
    pub problems: Vec<String>,
}

/// Judges `profile` on `run`: every scenario of the profile must have tests, all of
/// them run and passed; `extended` also needs `core` and its run properties.
pub fn judge(profile: Profile, run: &RunFacts) -> ProfileResult {
    let mut problems = Vec::new();
    let mut ran = false;
    if !run.install_passed {
        problems.push("the install did not succeed".to_string());
    }
    for scenario in profile.scenarios() {
        let prefix = format!("{scenario}::");
        let tests: Vec<&(String, Outcome)> =
            run.tests.iter().filter(|(name, _)| name.starts_with(&prefix)).collect();
        if tests.iter().any(|(_, o)| *o != Outcome::NotRun) {
            ran = true;
        }
        if tests.is_empty() {
            problems.push(format!("scenario {scenario} is missing"));
        }
        for (name, outcome) in tests {
            match outcome {
                Outcome::Passed => {}
                Outcome::Failed => problems.push(format!("{name} failed")),
                Outcome::NotRun => problems.push(format!("{name} did not run")),
            }
        }
    }
    if profile == Profile::Extended {
        let core = judge(Profile::Core, run);
        if !core.passed {
            problems.push("core did not pass in this run".into());
        }
    }
    problems.extend(profile.run_problems(run));
    ProfileResult { profile, run: ran, passed: problems.is_empty(), problems }
}

/// Every profile judged on `run`.
pub fn judge_all(run: &RunFacts) -> Vec<ProfileResult> {
    Profile::ALL.iter().map(|p| judge(*p, run)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_passed(installer: Installer, gateway_tls: GatewayTls) -> RunFacts {
        let tests = SCENARIOS.iter().map(|s| (format!("{}::t", s.name), Outcome::Passed)).collect();
        RunFacts { installer, gateway_tls, install_passed: true, tests }
    }

    #[test]
    fn every_scenario_is_in_one_profile_and_core_is_the_guide() {
        assert_eq!(
            Profile::Core.scenarios(),
            [
                "control_plane_install",
                "sidecar_injection",
                "in_mesh_traffic",
                "ingress_traffic",
                "validation",
                "outage"
            ]
        );
        assert_eq!(Profile::Extended.scenarios(), ["multi_remote", "multi_mesh"]);
    }

    #[test]
    fn extended_needs_simple_tls_sail_and_core() {
        let r = judge(Profile::Extended, &all_passed(Installer::Sail, GatewayTls::Simple));
        assert!(r.passed, "{r:?}");
        let r = judge(Profile::Extended, &all_passed(Installer::Helm, GatewayTls::Passthrough));
        assert!(r.run && !r.passed);
        assert_eq!(
            r.problems,
            [
                "the run's gateway TLS is not simple (--gateway-tls simple)",
                "the run's installer is helm, not sail (--installer sail)"
            ]
        );
        let mut run = all_passed(Installer::Sail, GatewayTls::Simple);
        run.tests[1].1 = Outcome::Failed;
        let r = judge(Profile::Extended, &run);
        assert_eq!(r.problems, ["core did not pass in this run"]);
        assert!(judge(Profile::Core, &all_passed(Installer::Helm, GatewayTls::Passthrough)).passed);
    }

    #[test]
    fn a_missing_skipped_or_failed_test_fails_the_profile_naming_it() {
        let mut run = all_passed(Installer::Istioctl, GatewayTls::Passthrough);
        run.tests.retain(|(n, _)| !n.starts_with("validation::"));
        run.tests[0].1 = Outcome::Failed;
        run.tests.push(("outage::paused".into(), Outcome::NotRun));
        run.install_passed = false;
        let r = judge(Profile::Core, &run);
        assert_eq!(
            r.problems,
            [
                "the install did not succeed",
                "control_plane_install::t failed",
                "scenario validation is missing",
                "outage::paused did not run"
            ]
        );
        let nothing = RunFacts { tests: Vec::new(), ..run };
        assert!(!judge(Profile::Core, &nothing).run);
    }
}

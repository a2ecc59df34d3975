//! An HTTP proxy in the environment, passed on to the nodes as kind v0.32 does:
//! `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (each upper and lower case), with
//! `NO_PROXY` extended by what must never go through the proxy: the run network's
//! subnets, the node names, the clusters' pod and service subnets, and the cluster's
//! DNS suffixes (`.svc`, `.svc.cluster`, `.svc.cluster.local`).

use ipnet::Ipv4Net;

const HTTP_PROXY: &str = "HTTP_PROXY";
const HTTPS_PROXY: &str = "HTTPS_PROXY";
const NO_PROXY: &str = "NO_PROXY";
/// The in-cluster DNS suffixes kind adds to `NO_PROXY`.
const CLUSTER_SUFFIXES: [&str; 3] = [".svc", ".svc.cluster", ".svc.cluster.local"];

/// The proxy variables of the environment (upper case wins over lower case).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxyEnv {
    /// Proxy URLs may carry credentials (`http://user:pass@proxy`): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("http_proxy", &self.http_proxy.as_ref().map(|_| ".."))
            .field("https_proxy", &self.https_proxy.as_ref().map(|_| ".."))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyEnv {
    /// The proxy variables from `get` (e.g. `std::env::var(..).ok()`); `None` when
    /// none is set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let read = |name: &str| {
            get(name).or_else(|| get(&name.to_ascii_lowercase())).filter(|v| !v.is_empty())
        };
        let env = Self {
            http_proxy: read(HTTP_PROXY),
            https_proxy: read(HTTPS_PROXY),
            no_proxy: read(NO_PROXY),
        };
        (env != Self::default()).then_some(env)
    }

    /// The node containers' environment entries (`NAME=value`, both cases), with
    /// `NO_PROXY` extended by `subnets` (the run network's and the clusters' pod and
    /// service ranges), the node names and the cluster DNS suffixes.
    pub fn node_env(&self, subnets: &[Ipv4Net], node_names: &[String]) -> Vec<String> {
        let mut no_proxy: Vec<String> = self.no_proxy.iter().cloned().collect();
        no_proxy.extend(subnets.iter().map(Ipv4Net::to_string));
        no_proxy.extend(node_names.iter().cloned());
        no_proxy.extend(CLUSTER_SUFFIXES.iter().map(|s| s.to_string()));
        let no_proxy = no_proxy.join(",");
        let mut env = Vec::new();
        for (name, value) in [
            (HTTP_PROXY, self.http_proxy.as_deref()),
            (HTTPS_PROXY, self.https_proxy.as_deref()),
            (NO_PROXY, Some(no_proxy.as_str())),
        ] {
            if let Some(value) = value {
                env.push(format!("{name}={value}"));
                env.push(format!("{}={value}", name.to_ascii_lowercase()));
            }
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Option<ProxyEnv> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_env(|k| vars.get(k).cloned())
    }

    #[test]
    fn without_proxy_variables_nothing_is_passed() {
        assert_eq!(env(&[]), None);
        assert_eq!(env(&[("HTTP_PROXY", "")]), None);
    }

    #[test]
    fn upper_case_wins_and_lower_case_is_read_too() {
        let e = env(&[
            ("HTTP_PROXY", "http://proxy.example:3128"),
            ("http_proxy", "http://other.example:3128"),
            ("https_proxy", "http://proxy.example:3129"),
        ])
        .unwrap();
        assert_eq!(e.http_proxy.as_deref(), Some("http://proxy.example:3128"));
        assert_eq!(e.https_proxy.as_deref(), Some("http://proxy.example:3129"));
        assert_eq!(e.no_proxy, None);
    }

    #[test]
    fn nodes_get_both_cases_and_no_proxy_covers_subnets_nodes_and_cluster_names() {
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy.example:3128"),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ])
        .unwrap();
        let subnets: Vec<Ipv4Net> =
            ["172.18.0.0/16", "10.10.0.0/16"].iter().map(|s| s.parse().unwrap()).collect();
        let nodes = vec!["ecp-r1-external-control-plane".to_string()];
        let no_proxy = "localhost,127.0.0.1,172.18.0.0/16,10.10.0.0/16,\
                        ecp-r1-external-control-plane,.svc,.svc.cluster,.svc.cluster.local";
        assert_eq!(
            e.node_env(&subnets, &nodes),
            [
                "HTTPS_PROXY=http://proxy.example:3128".to_string(),
                "https_proxy=http://proxy.example:3128".to_string(),
                format!("NO_PROXY={no_proxy}"),
                format!("no_proxy={no_proxy}"),
            ]
        );
    }

    #[test]
    fn debug_output_never_shows_a_proxy_url() {
        let e = env(&[("HTTP_PROXY", "http://user:secret@proxy.example:3128")]).unwrap();
        let shown = format!("{e:?}");
        assert!(!shown.contains("secret") && !shown.contains("proxy.example"), "{shown}");
    }
}

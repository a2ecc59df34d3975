//! Which `kindest/node` image runs a given Istio version: a table of known node
//! images, one per Kubernetes minor, pinned by digest, and the choice of the newest
//! minor the Istio release supports (`IstioVersion::kubernetes_minors`).
//!
//! Every kind release publishes images for several Kubernetes minors, not only its
//! default, and says that only the `@sha256` digest guarantees an image built for it
//! (a tag is rebuilt and re-pushed by later kind releases). Per minor the table holds
//! the image of the newest kind release that publishes one, up to v0.32, the release
//! this provider follows. Kubernetes 1.27 to 1.29 appear only in kind v0.20 to v0.27,
//! whose images predate that behaviour, so they are not in the table: Istio 1.22 and
//! 1.23 (Kubernetes 1.27 to 1.30) run on 1.30.

use std::fmt;

use crate::version::IstioVersion;

/// The node images' repository.
pub const REPOSITORY: &str = "kindest/node";

/// A `kindest/node` image some kind release publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownNodeImage {
    /// Kubernetes version, e.g. `1.30.13` (the image's tag is `v` and this).
    pub kubernetes: &'static str,
    pub kubernetes_minor: u32,
    /// The kind release whose release notes list the image, e.g. `v0.29.0`.
    pub kind_release: &'static str,
    /// `sha256:<hex>` as the release notes publish it; `None` where no published
    /// digest is known, so the image is named by its tag only (and messages say so).
    pub digest: Option<&'static str>,
}

impl KnownNodeImage {
    /// `kindest/node:v<kubernetes>`.
    pub fn tag(&self) -> String {
        format!("{REPOSITORY}:v{}", self.kubernetes)
    }

    /// What to pull and run: the tag with its digest (`tag@sha256:...`) where known.
    pub fn reference(&self) -> String {
        match self.digest {
            Some(digest) => format!("{}@{digest}", self.tag()),
            None => self.tag(),
        }
    }
}

impl fmt::Display for KnownNodeImage {
    /// The reference and where it comes from, e.g. `kindest/node:v1.30.13@sha256:...
    /// (kind v0.29.0)`, or `... (kind v0.x, tag only: no published digest known)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (kind {}", self.reference(), self.kind_release)?;
        if self.digest.is_none() {
            f.write_str(", tag only: no published digest known")?;
        }
        f.write_str(")")
    }
}

const fn image(
    kubernetes: &'static str,
    kubernetes_minor: u32,
    kind_release: &'static str,
    digest: &'static str,
) -> KnownNodeImage {
    KnownNodeImage { kubernetes, kubernetes_minor, kind_release, digest: Some(digest) }
}

/// One image per Kubernetes minor, oldest first, each from the newest kind release
/// (v0.29 to v0.32) whose release notes list one ("Images pre-built for this
/// release"). The defaults of v0.29 to v0.32 (1.33.1, 1.34.0, 1.35.0, 1.36.1) are
/// superseded here by newer patches of the same minors from later releases.
pub const KNOWN_NODE_IMAGES: &[KnownNodeImage] = &[
    image(
        "1.30.13",
        30,
        "v0.29.0",
        "sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
    ),
    image(
        "1.31.14",
        31,
        "v0.31.0",
        "sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b",
    ),
    image(
        "1.32.11",
        32,
        "v0.31.0",
        "sha256:5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
    ),
    image(
        "1.33.7",
        33,
        "v0.31.0",
        "sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
    ),
    image(
        "1.34.8",
        34,
        "v0.32.0",
        "sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
    ),
    image(
        "1.35.5",
        35,
        "v0.32.0",
        "sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
    ),
    image(
        "1.36.1",
        36,
        "v0.32.0",
        "sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
    ),
];

/// No known node image runs a Kubernetes version the Istio release supports.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no known kindest/node image runs a Kubernetes version Istio {istio} supports \
     (1.{lo} to 1.{hi}); the known ones are for Kubernetes {known}: choose one with \
     --node-image (a kindest/node:v1.{hi}.<patch>@sha256:... from the kind release notes)"
)]
pub struct NoNodeImage {
    pub istio: IstioVersion,
    pub lo: u32,
    pub hi: u32,
    pub known: String,
}

/// The node image of the newest Kubernetes minor the Istio release supports.
pub fn node_image_for(istio: IstioVersion) -> Result<&'static KnownNodeImage, NoNodeImage> {
    let (lo, hi) = istio.kubernetes_minors();
    KNOWN_NODE_IMAGES.iter().rev().find(|i| (lo..=hi).contains(&i.kubernetes_minor)).ok_or_else(
        || {
            let minors = KNOWN_NODE_IMAGES.iter().map(|i| i.kubernetes_minor);
            let (first, last) = (minors.clone().min(), minors.max());
            NoNodeImage {
                istio,
                lo,
                hi,
                known: match (first, last) {
                    (Some(a), Some(b)) => format!("1.{a} to 1.{b}"),
                    _ => "none".to_string(),
                },
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::RELEASES;

    fn pick(v: &str) -> Result<String, NoNodeImage> {
        node_image_for(v.parse().unwrap()).map(|i| i.tag())
    }

    #[test]
    fn each_istio_minor_gets_the_newest_kubernetes_it_supports() {
        assert_eq!(pick("1.22.8").unwrap(), "kindest/node:v1.30.13");
        assert_eq!(pick("1.23.6").unwrap(), "kindest/node:v1.30.13");
        assert_eq!(pick("1.24.6").unwrap(), "kindest/node:v1.31.14");
        assert_eq!(pick("1.25.5").unwrap(), "kindest/node:v1.32.11");
        assert_eq!(pick("1.26.8").unwrap(), "kindest/node:v1.33.7");
        assert_eq!(pick("1.27.9").unwrap(), "kindest/node:v1.33.7");
        assert_eq!(pick("1.28.0").unwrap(), "kindest/node:v1.34.8");
        assert_eq!(pick("1.29.7").unwrap(), "kindest/node:v1.35.5");
        assert_eq!(pick("1.30.4").unwrap(), "kindest/node:v1.36.1");
        assert_eq!(pick("1.31.0").unwrap(), "kindest/node:v1.36.1");
        assert_eq!(pick("1.32.0-alpha.1").unwrap(), "kindest/node:v1.36.1", "newest rules");
    }

    #[test]
    fn every_supported_release_has_a_digest_pinned_image_in_its_range() {
        for v in RELEASES {
            let image = node_image_for(*v).unwrap_or_else(|e| panic!("{e}"));
            let (lo, hi) = v.kubernetes_minors();
            assert!((lo..=hi).contains(&image.kubernetes_minor), "{v}: {image}");
            assert!(image.reference().contains("@sha256:"), "{v}: {image}");
        }
    }

    #[test]
    fn the_table_is_one_image_per_minor_oldest_first_tagged_with_its_minor() {
        let minors: Vec<u32> = KNOWN_NODE_IMAGES.iter().map(|i| i.kubernetes_minor).collect();
        assert!(minors.windows(2).all(|w| w[0] < w[1]), "{minors:?}");
        for i in KNOWN_NODE_IMAGES {
            assert!(i.kubernetes.starts_with(&format!("1.{}.", i.kubernetes_minor)), "{i}");
            let digest = i.digest.unwrap_or_default();
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{i}");
            assert!(i.kind_release.starts_with("v0."), "{i}");
        }
    }

    #[test]
    fn a_reference_carries_its_digest_and_a_tag_only_image_says_so() {
        let pinned = node_image_for("1.22.8".parse().unwrap()).unwrap();
        assert_eq!(
            pinned.reference(),
            "kindest/node:v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648"
        );
        assert!(pinned.to_string().ends_with("(kind v0.29.0)"), "{pinned}");
        let tag_only = KnownNodeImage { digest: None, ..*pinned };
        assert_eq!(tag_only.reference(), "kindest/node:v1.30.13");
        assert_eq!(
            tag_only.to_string(),
            "kindest/node:v1.30.13 (kind v0.29.0, tag only: no published digest known)"
        );
    }

    #[test]
    fn a_range_without_an_image_names_the_range_and_the_override() {
        let istio: IstioVersion = "1.22.8".parse().unwrap();
        let err = NoNodeImage { istio, lo: 27, hi: 29, known: "1.30 to 1.36".into() };
        let msg = err.to_string();
        assert!(msg.contains("1.27 to 1.29") && msg.contains("--node-image"), "{msg}");
        assert!(msg.contains("Kubernetes 1.30 to 1.36"), "{msg}");
    }
}

//! Parsing YAML that may hold credentials (Secrets, kubeconfigs, admin.conf).
//!
//! serde-saphyr adds a snippet of the source around an error to its message by
//! default; here that snippet could show a token or a private key. Every parse of
//! such text goes through these functions, which leave the snippet out.

use serde::de::DeserializeOwned;

/// One YAML document, parsed with no source snippet in the error.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, serde_saphyr::options! { with_snippet: false })
}

/// Every document of a multi-document YAML text, parsed with no source snippet in
/// the error.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options(text, serde_saphyr::options! { with_snippet: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = "token: s3cr3t-token-value\nkey: [unclosed\n";

    #[test]
    fn errors_do_not_quote_the_source() {
        let err = from_str::<serde_json::Value>(BROKEN).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        let err = from_multiple::<serde_json::Value>(BROKEN).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        // The library's default would quote it: the reason this module exists.
        let default = serde_saphyr::from_str::<serde_json::Value>(BROKEN).unwrap_err();
        assert!(default.to_string().contains("s3cr3t"), "{default}");
    }
}

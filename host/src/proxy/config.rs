//! The `[origins.<name>]` config tables: where each named origin is, which client hosts it
//! serves, and its timeouts. URLs are checked when the file is read.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::units;

/// One `[origins.<name>]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// Base URL (`http://` or `https://`, optional path prefix).
    pub url: OriginUrl,
    /// `Host` header sent to the origin instead of the URL's authority.
    #[serde(default)]
    pub host: Option<String>,
    /// PEM file of extra CA certificates to trust for this https origin (besides the web PKI roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client `Host` names this origin serves (`"example.com"`, `"*.example.com"`; ports ignored).
    /// When any origin lists hosts, requests for other hosts are refused with 421.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(
        default = "defaults::connect_timeout",
        deserialize_with = "units::duration"
    )]
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and between two body chunks.
    #[serde(
        default = "defaults::read_timeout",
        deserialize_with = "units::duration"
    )]
    pub read_timeout: Duration,
}

/// An origin base URL, checked when the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginUrl(pub http::Uri);

impl<'de> Deserialize<'de> for OriginUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_origin_url(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_origin_url(text: &str) -> Result<OriginUrl, String> {
    let uri: http::Uri = text.parse().map_err(|err| {
        format!("invalid URL {text:?} ({err}); write it like \"https://example.com\"")
    })?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(format!(
                "origin URL {text:?} must start with http:// or https://"
            ));
        }
    }
    if uri.authority().is_none() {
        return Err(format!("origin URL {text:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("origin URL {text:?} must not have a query string"));
    }
    Ok(OriginUrl(uri))
}

mod defaults {
    use std::time::Duration;

    pub fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn read_timeout() -> Duration {
        Duration::from_secs(30)
    }
}

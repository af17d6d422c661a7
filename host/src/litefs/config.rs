//! The `[litefs]` config table: where LiteFS's HTTP API listens and how long to wait for HALT.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// `[litefs]`: how caje uses LiteFS when its database sits on a LiteFS mount.
///
/// ```toml
/// [litefs]
/// require = true                 # default false
/// http_addr = "127.0.0.1:20202"  # default: unset
/// halt_timeout = "15s"           # default "15s"
/// info_timeout = "2s"            # default "2s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LitefsConfig {
    /// Refuse to start when the database is not on a LiteFS mount (default `false`: a database on
    /// an ordinary file system is used as is, without HALT). Set it on Fly so a wrong path fails
    /// loudly instead of silently writing an unreplicated file.
    pub require: bool,
    /// LiteFS's HTTP API as `host:port` (`http.addr` in `litefs.yml`; LiteFS listens on `:20202`
    /// by default). Default unset: the role is then read from the mount alone (`.primary`, `.lag`),
    /// which cannot tell a primary from a replica that lost its primary in the same millisecond
    /// it last heard from it. When set, `GET /info` settles that case.
    #[serde(deserialize_with = "host_port")]
    pub http_addr: Option<String>,
    /// How long taking HALT may take in total, queueing behind other holders in this process
    /// included (default `"15s"`). LiteFS gives up by itself after 10 s (EIO); this bound only
    /// matters when a holder in this process keeps HALT for long.
    #[serde(deserialize_with = "nonzero_duration")]
    pub halt_timeout: Duration,
    /// Timeout for one `GET /info` request (default `"2s"`).
    #[serde(deserialize_with = "nonzero_duration")]
    pub info_timeout: Duration,
}

impl Default for LitefsConfig {
    fn default() -> Self {
        Self {
            require: false,
            http_addr: None,
            halt_timeout: Duration::from_secs(15),
            info_timeout: Duration::from_secs(2),
        }
    }
}

fn nonzero_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    match humantime::parse_duration(&text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(D::Error::custom(format!(
            "duration {text:?} must be greater than zero"
        ))),
        Err(e) => Err(D::Error::custom(format!(
            "invalid duration {text:?} ({e}); write it like \"250ms\" or \"15s\""
        ))),
    }
}

fn host_port<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(de)?;
    let valid = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if valid {
        Ok(Some(text))
    } else {
        Err(D::Error::custom(format!(
            "invalid LiteFS HTTP address {text:?}; write it as host:port, like \"127.0.0.1:20202\""
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LitefsConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn empty_table_gives_documented_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, LitefsConfig::default());
        assert!(!config.require);
        assert_eq!(config.http_addr, None);
        assert_eq!(config.halt_timeout, Duration::from_secs(15));
        assert_eq!(config.info_timeout, Duration::from_secs(2));
    }

    #[test]
    fn full_table_parses() {
        let config = parse(
            "require = true\nhttp_addr = \"localhost:20202\"\nhalt_timeout = \"3s 500ms\"\ninfo_timeout = \"250ms\"",
        )
        .unwrap();
        assert!(config.require);
        assert_eq!(config.http_addr.as_deref(), Some("localhost:20202"));
        assert_eq!(config.halt_timeout, Duration::from_millis(3500));
        assert_eq!(config.info_timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_are_explained() {
        let err = parse("halt_timeout = \"soon\"").unwrap_err().to_string();
        assert!(err.contains("\"15s\""), "{err}");
        let err = parse("halt_timeout = \"0s\"").unwrap_err().to_string();
        assert!(err.contains("greater than zero"), "{err}");
        let err = parse("http_addr = \"20202\"").unwrap_err().to_string();
        assert!(err.contains("host:port"), "{err}");
        let err = parse("http_addr = \"[::1]:0\"").unwrap_err().to_string();
        assert!(err.contains("host:port"), "{err}");
        let err = parse("halt = \"1s\"").unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}

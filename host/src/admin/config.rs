//! The `[admin]` config section: where the admin API listens, where its token comes from, and
//! whether the Prometheus recorder runs. Every key has a documented default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve `/_caje/*` at all. Default `true`. With `false` every `/_caje` path answers 404 and
    /// never reaches the origin.
    pub enabled: bool,
    /// A listener of its own for the admin API. Default: none, the admin API is served on the
    /// proxy's `listen` address. When set, `/_caje` paths on the proxy listener answer 404.
    pub listen: Option<SocketAddr>,
    /// A file holding the bearer token (surrounding whitespace ignored; relative to the config
    /// file). Default: none. The `CAJE_ADMIN_TOKEN` environment variable takes precedence. With
    /// no token at all, the admin API answers loopback clients only.
    pub token_file: Option<PathBuf>,
    /// Install the Prometheus recorder and serve `/_caje/metrics`. Default `true`.
    pub metrics: bool,
    /// Answer `GET /_caje/health` from clients without the token (or, with no token
    /// configured, from beyond loopback) with a bare `{"serving": true}`, for health checkers
    /// that cannot hold a secret, such as Fly's. The full report still needs the token. Default
    /// `false`.
    pub public_health: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: None,
            token_file: None,
            metrics: true,
            public_health: false,
        }
    }
}

impl AdminConfig {
    /// Checks what serde cannot, given the proxy's own address; the message names the key.
    pub fn validate(&self, proxy_listen: SocketAddr) -> Result<(), String> {
        match self.listen {
            Some(admin) if admin == proxy_listen && admin.port() != 0 => Err(format!(
                "admin.listen ({admin}) is the proxy's listen address; remove admin.listen to \
                 serve the admin API on the proxy listener, or pick another port"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let config: AdminConfig = toml::from_str("").unwrap();
        assert_eq!(config, AdminConfig::default());
        assert!(config.enabled && config.metrics && !config.public_health);
        assert_eq!(config.listen, None);
    }

    #[test]
    fn bad_input_is_refused_with_the_key_named() {
        let unknown = toml::from_str::<AdminConfig>("tokn_file = \"x\"").unwrap_err();
        assert!(unknown.to_string().contains("tokn_file"), "{unknown}");
        let listen = toml::from_str::<AdminConfig>("listen = \"nowhere\"").unwrap_err();
        assert!(listen.to_string().contains("listen"), "{listen}");
        let same: AdminConfig = toml::from_str("listen = \"127.0.0.1:8080\"").unwrap();
        let err = same
            .validate("127.0.0.1:8080".parse().unwrap())
            .unwrap_err();
        assert!(err.contains("admin.listen"), "{err}");
        same.validate("127.0.0.1:8081".parse().unwrap()).unwrap();
    }
}

//! `caje.toml` → a typed, validated [`Config`], composed of the sections each module owns
//! (`cache::CacheConfig`, `server::ServerConfig`, …). Errors name the file, the key and the line.
//!
//! Only `app` (and `main`) import this module; it imports nothing of caje but those sections,
//! so no module below it can reach back into the whole config.

mod error;
#[cfg(test)]
mod fuzz;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::ConfigError;

use crate::admin::AdminConfig;
use crate::cache::CacheConfig;
use crate::litefs::LitefsConfig;
use crate::logging::LogConfig;
use crate::manifest::ManifestConfig;
use crate::policy::PolicyConfig;
use crate::populate::PopulateConfig;
use crate::proxy::OriginConfig;
use crate::server::ServerConfig;

/// The whole configuration of one caje node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// Directory of this node's cached bodies.
    pub cache_dir: PathBuf,
    /// The SQLite manifest shared by every node.
    pub database: PathBuf,
    /// Directory of `*.wasm` cache policies.
    pub policies_dir: PathBuf,
    /// Origin used when no policy picks one.
    pub default_origin: String,
    pub origins: BTreeMap<String, OriginConfig>,
    pub cache: CacheConfig,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub manifest: ManifestConfig,
    pub policies: PolicyConfig,
    pub litefs: LitefsConfig,
    pub admin: AdminConfig,
    pub populate: PopulateConfig,
}

/// The file as written; paths are still relative to the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    cache_dir: PathBuf,
    database: PathBuf,
    policies_dir: PathBuf,
    default_origin: toml::Spanned<String>,
    origins: toml::Spanned<BTreeMap<String, OriginConfig>>,
    #[serde(default)]
    cache: CacheConfig,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    manifest: ManifestConfig,
    #[serde(default)]
    policies: PolicyConfig,
    #[serde(default)]
    litefs: LitefsConfig,
    #[serde(default)]
    admin: AdminConfig,
    #[serde(default)]
    populate: PopulateConfig,
}

impl Config {
    /// Reads and validates a config file; relative paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|err| ConfigError::unreadable(path, &err))?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|err| ConfigError::from_toml(path, text, &err))?;
        check_origins(&raw, text, path)?;
        check_sections(&raw, path)?;
        Ok(raw.resolve(path.parent().unwrap_or(Path::new("."))))
    }
}

/// At least one origin, and the default origin among them.
fn check_origins(raw: &RawConfig, text: &str, path: &Path) -> Result<(), ConfigError> {
    let origins = raw.origins.get_ref();
    if origins.is_empty() {
        return Err(ConfigError::at(
            path,
            text,
            raw.origins.span(),
            "origins",
            "no origin is configured",
            "add a table such as [origins.web] with url = \"https://example.com\"",
        ));
    }
    let default_origin = raw.default_origin.get_ref();
    if !origins.contains_key(default_origin) {
        let known: Vec<&str> = origins.keys().map(String::as_str).collect();
        return Err(ConfigError::at(
            path,
            text,
            raw.default_origin.span(),
            "default_origin",
            &format!("there is no [origins.{default_origin}] table"),
            &format!("use one of: {}", known.join(", ")),
        ));
    }
    Ok(())
}

/// What each section's types cannot say about its values, reported with the key.
fn check_sections(raw: &RawConfig, path: &Path) -> Result<(), ConfigError> {
    let see = |section: &str| format!("see [{section}] in the configuration reference");
    if raw.server.max_connections == 0 || raw.server.idle_timeout.is_zero() {
        return Err(ConfigError::keyed(
            path,
            "server",
            "max_connections and idle_timeout must be above zero",
            "remove the key for its default, or set a positive value",
        ));
    }
    if raw.cache.memory_max_object > raw.cache.memory_size {
        return Err(ConfigError::keyed(
            path,
            "cache.memory_max_object",
            "is larger than cache.memory_size",
            "raise cache.memory_size or lower cache.memory_max_object",
        ));
    }
    raw.policies
        .validate()
        .map_err(|err| ConfigError::keyed(path, "policies", &err.to_string(), &see("policies")))?;
    raw.manifest
        .validate()
        .map_err(|err| ConfigError::keyed(path, "manifest", &err.to_string(), &see("manifest")))?;
    raw.admin
        .validate(raw.listen)
        .map_err(|err| ConfigError::keyed(path, "admin.listen", &err, &see("admin")))?;
    raw.populate
        .validate()
        .map_err(|bad| ConfigError::keyed(path, bad.key, &bad.message, &see("populate")))
}

impl RawConfig {
    /// The config with every path in it resolved against `base`, the file's directory.
    fn resolve(self, base: &Path) -> Config {
        let mut origins = self.origins.into_inner();
        for origin in origins.values_mut() {
            origin.ca_file = origin.ca_file.take().map(|file| base.join(file));
        }
        let mut policies = self.policies;
        policies.precompiled_dir = policies.precompiled_dir.map(|dir| base.join(dir));
        let admin = AdminConfig {
            token_file: self.admin.token_file.map(|file| base.join(file)),
            ..self.admin
        };
        Config {
            listen: self.listen,
            cache_dir: base.join(self.cache_dir),
            database: base.join(self.database),
            policies_dir: base.join(self.policies_dir),
            default_origin: self.default_origin.into_inner(),
            origins,
            cache: self.cache,
            server: self.server,
            log: self.log,
            manifest: self.manifest,
            policies,
            litefs: self.litefs,
            admin,
            populate: self.populate,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::units::ByteSize;

    pub(super) const GOOD: &str = r#"
listen = "127.0.0.1:8080"
cache_dir = "var/cache"
database = "var/manifest.db"
policies_dir = "policies"
default_origin = "demo"

[origins.demo]
url = "http://127.0.0.1:9001"
connect_timeout = "2s"
"#;

    fn error(text: &str) -> ConfigError {
        Config::parse(text, Path::new("/etc/caje/caje.toml")).unwrap_err()
    }

    #[test]
    fn a_good_config_resolves_paths_against_its_file() {
        let config = Config::parse(GOOD, Path::new("/etc/caje/caje.toml")).unwrap();
        assert_eq!(config.cache_dir, Path::new("/etc/caje/var/cache"));
        assert_eq!(
            config.origins["demo"].connect_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.origins["demo"].read_timeout, Duration::from_secs(30));
        assert_eq!(config.cache.memory_size, ByteSize(16 << 20));
        let with_admin = format!("{GOOD}\n[admin]\ntoken_file = \"secrets/admin\"\n");
        let config = Config::parse(&with_admin, Path::new("/etc/caje/caje.toml")).unwrap();
        assert_eq!(
            config.admin.token_file.as_deref(),
            Some(Path::new("/etc/caje/secrets/admin"))
        );
    }

    #[test]
    fn a_bad_value_names_file_line_and_key() {
        let err = error(&GOOD.replace("\"2s\"", "\"2 parsecs\""));
        assert_eq!(err.line, Some(10));
        assert_eq!(err.key.as_deref(), Some("origins.demo.connect_timeout"));
        assert!(err.to_string().starts_with(
            "/etc/caje/caje.toml:10: `origins.demo.connect_timeout`: invalid duration"
        ));
    }

    #[test]
    fn unknown_keys_and_missing_keys_are_named() {
        let err = error(&GOOD.replace("connect_timeout", "conect_timeout"));
        assert_eq!(err.line, Some(10));
        assert!(
            err.message.contains("unknown field `conect_timeout`"),
            "{err}"
        );
        assert!(err.hint.is_some());
        let err = error(&GOOD.replace("listen = \"127.0.0.1:8080\"\n", ""));
        assert!(err.message.contains("missing field `listen`"), "{err}");
    }

    #[test]
    fn semantic_errors_point_at_their_key() {
        let err = error(&GOOD.replace("default_origin = \"demo\"", "default_origin = \"nope\""));
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(6), Some("default_origin"))
        );
        assert!(err.to_string().contains("use one of: demo"));
        let err = error(&GOOD.replace("http://127.0.0.1:9001", "ftp://host"));
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(9), Some("origins.demo.url"))
        );
        let err = error(&GOOD.replace("listen = \"127.0.0.1:8080\"", "listen = 8080"));
        assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("listen")));
        let err = error(&format!(
            "{GOOD}\n[cache]\nmemory_size = \"1MiB\"\nmemory_max_object = \"2MiB\"\n"
        ));
        assert_eq!(err.key.as_deref(), Some("cache.memory_max_object"));
        let err = error(&format!("{GOOD}\n[admin]\nlisten = \"127.0.0.1:8080\"\n"));
        assert_eq!(err.key.as_deref(), Some("admin.listen"));
        let err = error(&format!("{GOOD}\n[admin]\ntoken = \"x\"\n"));
        assert_eq!(err.key.as_deref(), Some("admin.token"));
    }

    #[test]
    fn the_litefs_table_is_read_and_its_errors_located() {
        let config = Config::parse(
            &format!("{GOOD}\n[litefs]\nrequire = true\n"),
            Path::new("/etc/caje/caje.toml"),
        )
        .unwrap();
        assert!(config.litefs.require);
        let err = error(&format!("{GOOD}\n[litefs]\nhalt_timeout = \"0s\"\n"));
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(13), Some("litefs.halt_timeout"))
        );
    }

    #[test]
    fn the_populate_table_is_read_and_its_errors_name_the_key() {
        let config = Config::parse(
            &format!("{GOOD}\n[populate]\nconcurrency = 16\n"),
            Path::new("/etc/caje/caje.toml"),
        )
        .unwrap();
        assert_eq!(config.populate.concurrency, 16);
        let err = error(&format!("{GOOD}\n[populate]\nconcurrency = 0\n"));
        assert_eq!(err.key.as_deref(), Some("populate.concurrency"));
        let err = error(&format!("{GOOD}\n[populate]\ninterval = \"soon\"\n"));
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(13), Some("populate.interval"))
        );
    }

    #[test]
    fn server_limits_have_defaults_and_refuse_zero() {
        let config = Config::parse(GOOD, Path::new("/etc/caje/caje.toml")).unwrap();
        assert_eq!(config.server.max_connections, 10_000);
        assert_eq!(config.server.idle_timeout, Duration::from_secs(60));
        let err = error(&format!("{GOOD}\n[server]\nmax_connections = 0\n"));
        assert_eq!(err.key.as_deref(), Some("server"));
        let err = error(&format!("{GOOD}\n[server]\nidle_timeout = \"0s\"\n"));
        assert!(err.message.contains("above zero"), "{err}");
    }

    #[test]
    fn broken_toml_is_located() {
        let err = error("listen = \"127.0.0.1:8080\nother = 1\n");
        assert_eq!(err.line, Some(1));
    }
}

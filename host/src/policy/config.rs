//! The `[policies]` table of caje.toml: per-call limits, reload behaviour and failure modes.
//! Every field is optional; the defaults are documented on each field.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;
use serde::{Deserialize, Serialize};

/// Settings for the policy chain (the directory itself is the top-level `policies_dir` key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Wall-clock backstop for one hook call (an epoch deadline); "100ms" by default. Fuel is
    /// the tight budget: this only stops a module the fuel meter cannot (e.g. under overload).
    #[serde(deserialize_with = "crate::units::duration")]
    pub hook_timeout: Duration,
    /// CPU budget for one hook call, in fuel units (about one per wasm instruction);
    /// 1,000,000 by default. The example policies use 400–8,000 per call; `caje policy test`
    /// prints what a module uses.
    pub fuel: u64,
    /// Linear memory one module instance may use, in bytes ("16MiB" or an integer); 16 MiB by
    /// default (a Rust policy starts at about 1.1 MiB: its 1 MiB stack plus data).
    #[serde(deserialize_with = "crate::units::size")]
    pub memory_limit: u64,
    /// File events are debounced this long, and a changed file is loaded only once it has not
    /// been modified for this long; "200ms" by default.
    #[serde(deserialize_with = "crate::units::duration")]
    pub reload_debounce: Duration,
    /// What a module's failure (trap, timeout, invalid decision) does to the request unless
    /// the module is listed in `modules`: "open" (default) skips the module, "closed" refuses
    /// the request (503).
    pub failure: FailureMode,
    /// Per-module settings keyed by file name, e.g. `"10-auth.wasm" = { failure = "closed" }`.
    pub modules: BTreeMap<String, ModuleConfig>,
    /// Where compiled modules are cached, so a restart does not recompile them. Default: a
    /// sibling of the policies directory named `<dir>.precompiled` (e.g. `/etc/caje/policies`
    /// → `/etc/caje/policies.precompiled`); if it cannot be written, modules are compiled in
    /// memory on every start.
    pub precompiled_dir: Option<PathBuf>,
    /// Module instances alive at once, across all modules (idle ones kept for reuse plus
    /// in-flight calls); sizes the pooling allocator. 1000 by default.
    pub max_instances: u32,
    /// Reuse a module's `on-request` and `on-deliver` decisions for calls that give the same
    /// answers to everything it read (see the policy memo in the README); `true` by default. Modules
    /// whose decisions depend on anything else (clocks, randomness, state kept between calls)
    /// must be listed with `memoize = false`.
    pub memoize: bool,
    /// Decisions remembered per module and memoized hook it implements (`on-request`,
    /// `on-deliver`); 4096 by default.
    pub memo_entries: usize,
}

/// What a module's failure does to the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Skip the module: the chain goes on with the decision the module was given.
    #[default]
    Open,
    /// Refuse the request (the proxy answers 503).
    Closed,
}

/// Settings of one module, keyed by its file name in [`PolicyConfig::modules`]; each key
/// overrides the `[policies]` one of the same name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleConfig {
    pub failure: Option<FailureMode>,
    pub memoize: Option<bool>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            hook_timeout: Duration::from_millis(100),
            fuel: 1_000_000,
            memory_limit: 16 << 20,
            reload_debounce: Duration::from_millis(200),
            failure: FailureMode::Open,
            modules: BTreeMap::new(),
            precompiled_dir: None,
            max_instances: 1000,
            memoize: true,
            memo_entries: 4096,
        }
    }
}

impl PolicyConfig {
    /// Checks the values serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            !self.hook_timeout.is_zero(),
            "policies.hook_timeout must be more than 0"
        );
        ensure!(self.fuel > 0, "policies.fuel must be more than 0");
        ensure!(
            (64 << 10..=4 << 30).contains(&self.memory_limit),
            "policies.memory_limit must be between 64KiB and 4GiB, not {} bytes",
            self.memory_limit
        );
        ensure!(
            self.max_instances > 0,
            "policies.max_instances must be more than 0"
        );
        Ok(())
    }

    /// The failure mode of the module in file `name`.
    pub fn failure_mode(&self, name: &str) -> FailureMode {
        self.modules
            .get(name)
            .and_then(|module| module.failure)
            .unwrap_or(self.failure)
    }

    /// How many of its decisions the module in file `name` may have memoized (0: none).
    pub fn memo_entries(&self, name: &str) -> usize {
        let memoize = self
            .modules
            .get(name)
            .and_then(|module| module.memoize)
            .unwrap_or(self.memoize);
        if memoize { self.memo_entries } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<PolicyConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn every_field_has_a_default() {
        let config = parse("").unwrap();
        assert_eq!(config, PolicyConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn durations_sizes_and_failure_modes() {
        let config = parse(
            r#"
            hook_timeout = "250ms"
            fuel = 1000
            memory_limit = "32MiB"
            reload_debounce = "1s"
            failure = "closed"
            precompiled_dir = "/var/cache/caje"
            max_instances = 64
            [modules]
            "10-auth.wasm" = { failure = "open" }
            "#,
        )
        .unwrap();
        assert_eq!(config.hook_timeout, Duration::from_millis(250));
        assert_eq!(config.memory_limit, 32 << 20);
        assert_eq!(config.reload_debounce, Duration::from_secs(1));
        assert_eq!(config.failure_mode("10-auth.wasm"), FailureMode::Open);
        assert_eq!(config.failure_mode("20-other.wasm"), FailureMode::Closed);
        assert_eq!(
            config.precompiled_dir,
            Some(PathBuf::from("/var/cache/caje"))
        );
        assert_eq!(
            parse("memory_limit = 1048576").unwrap().memory_limit,
            1 << 20
        );
    }

    #[test]
    fn mistakes_are_named() {
        let unknown = parse("fuell = 3").unwrap_err().to_string();
        assert!(unknown.contains("unknown field `fuell`"), "{unknown}");
        let duration = parse("hook_timeout = \"fast\"").unwrap_err().to_string();
        assert!(duration.contains("invalid duration \"fast\""), "{duration}");
        let mode = parse("failure = \"maybe\"").unwrap_err().to_string();
        assert!(mode.contains("unknown variant `maybe`"), "{mode}");
        let small = PolicyConfig {
            memory_limit: 100,
            ..PolicyConfig::default()
        };
        assert!(
            small
                .validate()
                .unwrap_err()
                .to_string()
                .contains("memory_limit")
        );
        let no_fuel = PolicyConfig {
            fuel: 0,
            ..PolicyConfig::default()
        };
        assert!(
            no_fuel
                .validate()
                .unwrap_err()
                .to_string()
                .contains("policies.fuel")
        );
    }
}

//! The `[populate]` config section: the background warming job and how hard it may press an
//! origin. Every key has a documented default, so an empty (or missing) section is valid.

use std::time::Duration;

use serde::Deserialize;

/// The `[populate]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulateConfig {
    /// Warm this node in the background from what other nodes record. Default `true`. Purges
    /// logged by other nodes are applied to this node's files either way.
    pub enabled: bool,
    /// How often the manifest's change counter is read (one small query): the delay between a
    /// row arriving and this node acting on it. Default `"200ms"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub interval: Duration,
    /// The most warming fetches at once, background job and `POST /_caje/populate` together.
    /// Default `4`.
    pub concurrency: usize,
    /// The most warming fetches started per second against one origin; `0`: no limit beyond
    /// `concurrency`. Default `0`.
    pub origin_rate: u32,
    /// How long an origin is left alone after a warming fetch failed (unreachable, timeout,
    /// 5xx); doubled after every further failed round. Default `"1s"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub backoff_min: Duration,
    /// The longest pause. Default `"60s"`.
    #[serde(deserialize_with = "crate::units::duration")]
    pub backoff_max: Duration,
}

impl Default for PopulateConfig {
    fn default() -> Self {
        PopulateConfig {
            enabled: true,
            interval: Duration::from_millis(200),
            concurrency: 4,
            origin_rate: 0,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A value serde accepts but caje does not: the key (under `populate.`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    pub key: &'static str,
    pub message: String,
}

/// Bounds that keep a typo from turning the job into a busy loop or a flood.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_CONCURRENCY: usize = 1024;

impl PopulateConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), BadValue> {
        let bad = |key, message: String| Err(BadValue { key, message });
        if self.interval < MIN_INTERVAL {
            return bad(
                "populate.interval",
                format!("must be at least {MIN_INTERVAL:?}, to keep the job from spinning"),
            );
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return bad(
                "populate.concurrency",
                format!(
                    "must be from 1 to {MAX_CONCURRENCY}; turn warming off with enabled = false"
                ),
            );
        }
        if self.backoff_min.is_zero() {
            return bad(
                "populate.backoff_min",
                "must be longer than zero, or a failing origin is retried at once".into(),
            );
        }
        if self.backoff_max < self.backoff_min {
            return bad(
                "populate.backoff_max",
                format!(
                    "({:?}) is shorter than populate.backoff_min ({:?})",
                    self.backoff_max, self.backoff_min
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let config: PopulateConfig = toml::from_str("").unwrap();
        assert_eq!(config, PopulateConfig::default());
        config.validate().unwrap();
        let config: PopulateConfig =
            toml::from_str("interval = \"100ms\"\nconcurrency = 16\norigin_rate = 50").unwrap();
        assert_eq!(
            (config.interval, config.concurrency, config.origin_rate),
            (Duration::from_millis(100), 16, 50)
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let unknown = toml::from_str::<PopulateConfig>("intervall = \"1s\"").unwrap_err();
        assert!(unknown.to_string().contains("intervall"), "{unknown}");
        for (text, key) in [
            ("interval = \"1ms\"", "populate.interval"),
            ("concurrency = 0", "populate.concurrency"),
            ("backoff_min = \"0s\"", "populate.backoff_min"),
            ("backoff_max = \"10ms\"", "populate.backoff_max"),
        ] {
            let config: PopulateConfig = toml::from_str(text).unwrap();
            assert_eq!(config.validate().unwrap_err().key, key, "{text}");
        }
    }
}

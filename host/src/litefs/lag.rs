//! Replication lag as LiteFS reports it in `.lag`.

use std::time::Duration;

/// What `.lag` says: LiteFS writes `now - last primary timestamp` in milliseconds, `0` on the
/// primary, and `i32::MAX` (`+2147483647`) until a replica finished its first sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Behind the primary by this much (zero on the primary; clock skew between nodes can make
    /// LiteFS report a negative value, which reads as zero).
    Behind(Duration),
    /// This replica has not finished its initial replication; its data may be arbitrarily old.
    NotReplicated,
}

impl Lag {
    pub(super) fn from_millis(millis: i64) -> Lag {
        if millis >= i64::from(i32::MAX) {
            Lag::NotReplicated
        } else {
            Lag::Behind(Duration::from_millis(millis.max(0).unsigned_abs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_litefs_values() {
        assert_eq!(Lag::from_millis(0), Lag::Behind(Duration::ZERO));
        assert_eq!(
            Lag::from_millis(1500),
            Lag::Behind(Duration::from_millis(1500))
        );
        assert_eq!(Lag::from_millis(-3), Lag::Behind(Duration::ZERO));
        assert_eq!(Lag::from_millis(2_147_483_647), Lag::NotReplicated);
    }
}

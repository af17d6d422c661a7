//! The part a LiteFS node plays in its cluster.

use std::fmt;

/// Whether this node may write its databases directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Holds the lease: writes go straight in (HALT is a no-op here).
    Primary,
    /// Connected to the primary named here (its `lease.hostname`): writes need HALT.
    Replica { primary: String },
    /// A replica that knows no primary right now: writes fail, HALT fails with EIO.
    Disconnected,
}

impl Role {
    /// `true` on the primary.
    pub fn is_primary(&self) -> bool {
        matches!(self, Role::Primary)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Primary => f.write_str("primary"),
            Role::Replica { primary } => write!(f, "replica of {primary}"),
            Role::Disconnected => f.write_str("replica without a primary"),
        }
    }
}

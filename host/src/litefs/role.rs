//! The part a LiteFS node plays in its cluster.

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

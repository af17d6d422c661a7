//! What a purge does to the pages it reaches: removes them (hard), or marks them stale (soft)
//! so that the next request revalidates them with the origin.

/// How a purge treats the pages it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PurgeMode {
    /// Remove them.
    #[default]
    Hard,
    /// Keep them, stale: the next request revalidates (and the entry may still answer while
    /// the origin fails, within stale-if-error).
    Soft,
}

impl PurgeMode {
    /// The mode of a purge that says whether it is `soft` (the admin API's JSON, the
    /// manifest's column).
    pub fn soft_if(soft: bool) -> PurgeMode {
        if soft {
            PurgeMode::Soft
        } else {
            PurgeMode::Hard
        }
    }

    pub fn is_soft(self) -> bool {
        self == PurgeMode::Soft
    }
}

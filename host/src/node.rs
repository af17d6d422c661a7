//! What a node's request path shares: the cache, the manifest handle and the policy chain,
//! opened once by `app` and handed to the proxy and the admin API (populate gets its parts).

use crate::cache::Cache;
use crate::manifest::Manifest;
use crate::policy::Policies;

/// The shared parts of one node. Cheap handles: each is a clone of an `Arc` inside.
pub struct NodeContext {
    pub cache: Cache,
    /// Where stored entries are recorded for the fleet; `None` when `[manifest] enabled = false`.
    pub manifest: Option<Manifest>,
    /// The hot-reloading policy chain (empty when the directory has no modules).
    pub policies: Policies,
}

//! The hyper service: a request's life from canonical form through lookup, coalesced origin fetch
//! and fill, to the response. The modules below it own one phase each.

mod canonical;
mod coalesce;
mod config;
mod fetch;
mod headers;
mod origin;
mod respond;
mod route;
mod service;
mod warm;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::uri::Scheme;

pub use canonical::{BadRequest, CanonicalRequest};
pub use config::{OriginConfig, OriginUrl};
pub use origin::{OriginError, Origins};
pub use warm::Warmed;

use crate::cache::Cache;
use crate::litefs;
use crate::manifest::Manifest;
use crate::policy::Policies;

/// What the proxy is configured with, besides the parts it is handed.
pub struct ProxyConfig<'a> {
    pub origins: &'a BTreeMap<String, OriginConfig>,
    /// The origin of requests no policy and no `hosts` list sends elsewhere.
    pub default_origin: &'a str,
    /// One `caje::access` log line per request.
    pub access_log: bool,
}

/// Everything a request needs, shared by all connections.
pub struct Proxy {
    cache: Cache,
    origins: Origins,
    coalescer: Arc<coalesce::Coalescer>,
    default_origin: String,
    scheme: Scheme,
    access_log: bool,
    /// Where stored entries are recorded for the fleet; `None` when `[manifest] enabled = false`.
    manifest: Option<Manifest>,
    /// The hot-reloading policy chain (empty when the directory has no modules).
    policies: Policies,
    /// The LiteFS view of the manifest's database, when it is on a LiteFS mount.
    litefs: Option<litefs::Database>,
}

impl Proxy {
    /// Builds the proxy; fails when an origin's TLS settings are unusable.
    pub fn new(
        config: &ProxyConfig<'_>,
        cache: Cache,
        manifest: Option<Manifest>,
        policies: Policies,
    ) -> Result<Proxy, String> {
        Ok(Proxy {
            cache,
            origins: Origins::new(config.origins)?,
            coalescer: Arc::default(),
            default_origin: config.default_origin.to_owned(),
            scheme: Scheme::HTTP,
            access_log: config.access_log,
            manifest,
            policies,
            litefs: None,
        })
    }

    /// Attaches the LiteFS view of the manifest's database, for [`Proxy::litefs`].
    pub fn with_litefs(self, litefs: Option<litefs::Database>) -> Proxy {
        Proxy { litefs, ..self }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// No origin restricts the hosts it serves.
    pub fn accepts_any_host(&self) -> bool {
        self.origins.accepts_any_host()
    }

    /// The manifest's database on LiteFS, `None` when it is not on a LiteFS mount. For health
    /// reports: [`litefs::Database::status`] gives this node's role and replication lag now.
    pub fn litefs(&self) -> Option<&litefs::Database> {
        self.litefs.as_ref()
    }

    /// Origin fetches currently in flight (one per key however many requests wait for it).
    pub fn fetches_in_flight(&self) -> usize {
        self.coalescer.in_flight()
    }
}

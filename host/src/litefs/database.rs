//! One SQLite database on a LiteFS mount: its node's role, its lag, and HALT for writing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::LitefsConfig;
use super::error::Error;
use super::halt::{Halt, lock_path};
use super::info::fetch_info;
use super::lag::Lag;
use super::mount::Mount;
use super::role::Role;

/// A node's place in its cluster at one moment, as a health report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub lag: Lag,
}

/// A database file served by LiteFS.
#[derive(Debug, Clone)]
pub struct Database {
    mount: Mount,
    path: PathBuf,
    lock_path: PathBuf,
    http_addr: Option<String>,
    halt_timeout: Duration,
    info_timeout: Duration,
}

impl Database {
    /// The LiteFS view of `database`, or `None` when it is not on a LiteFS mount (an error
    /// instead when `config.require` is set). The database file need not exist yet.
    pub fn detect(database: &Path, config: &LitefsConfig) -> Result<Option<Database>, Error> {
        let Some(mount) = Mount::for_database(database)? else {
            if config.require {
                return Err(Error::NotOnLitefs {
                    database: database.to_path_buf(),
                });
            }
            return Ok(None);
        };
        let name = database.file_name().unwrap_or(database.as_os_str());
        let path = mount.dir().join(name);
        tracing::info!(database = %path.display(), "database is on a LiteFS mount");
        Ok(Some(Database {
            lock_path: lock_path(&path),
            path,
            mount,
            http_addr: config.http_addr.clone(),
            halt_timeout: config.halt_timeout,
            info_timeout: config.info_timeout,
        }))
    }

    /// The database's path on the mount (canonical directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mount serving the database.
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    /// This node's role. `.primary` names the primary on a connected replica; otherwise `/info`
    /// decides when `http_addr` is configured, and `.lag` (exactly 0 only on the primary) when not.
    pub async fn role(&self) -> Result<Role, Error> {
        if let Some(primary) = self.mount.primary_hostname().await? {
            return Ok(Role::Replica { primary });
        }
        let is_primary = match &self.http_addr {
            Some(addr) => fetch_info(addr, self.info_timeout).await?.is_primary,
            None => self.mount.raw_lag().await? == 0,
        };
        Ok(if is_primary {
            Role::Primary
        } else {
            Role::Disconnected
        })
    }

    /// How far this node is behind the primary.
    pub async fn lag(&self) -> Result<Lag, Error> {
        self.mount.lag().await
    }

    /// [`role`](Self::role) and [`lag`](Self::lag) together. Both read small files in the mount
    /// (and `/info` when `http_addr` is set); a wedged LiteFS hangs such reads, so a health check
    /// should bound this call with a timeout.
    pub async fn status(&self) -> Result<Status, Error> {
        let (role, lag) = tokio::join!(self.role(), self.lag());
        Ok(Status {
            role: role?,
            lag: lag?,
        })
    }

    /// Takes HALT for this database within `halt_timeout`. Take it before `BEGIN`, keep it until
    /// after `COMMIT`, and commit quickly: the primary's writers wait meanwhile.
    pub async fn halt(&self) -> Result<Halt, Error> {
        Halt::acquire(&self.lock_path, self.halt_timeout).await
    }
}

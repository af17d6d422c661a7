//! LiteFS support: whether a SQLite database sits on a LiteFS mount, which role this node plays,
//! how far behind it is, and the HALT lock that lets a replica write.
//!
//! Self-contained on purpose (std, nix, tokio, tracing, serde, hyper, humantime; no caje types)
//! so it could be published as its own crate. Facts come from LiteFS 0.5.14's source and are
//! checked against a real two-node cluster by `host/tests/litefs.rs`.
//!
//! ```no_run
//! # async fn write(db: &std::path::Path) -> Result<(), caje::litefs::Error> {
//! use caje::litefs::{Database, LitefsConfig};
//! if let Some(litefs) = Database::detect(db, &LitefsConfig::default())? {
//!     let halt = litefs.halt().await?; // before BEGIN
//!     // BEGIN; ...; COMMIT; on the same connection as always
//!     halt.release().await?; // after COMMIT
//! }
//! # Ok(()) }
//! ```

mod config;
mod database;
mod error;
mod halt;
mod info;
mod lag;
mod mount;
mod role;

pub use config::LitefsConfig;
pub use database::{Database, Status};
pub use error::{Error, HaltStep};
pub use halt::{HALT_BYTE, Halt, lock_path};
pub use info::{NodeInfo, PrimaryInfo, fetch_info};
pub use lag::Lag;
pub use mount::Mount;
pub use role::Role;

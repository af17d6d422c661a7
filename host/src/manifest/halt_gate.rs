//! The write gate of a manifest on a LiteFS mount: a replica runs each write transaction inside
//! the LiteFS HALT lock, the primary writes directly.
//!
//! # What entering the gate does
//!
//! The writer enters once per batch, per purge or clear, and per connection (re)open. Each time,
//! the gate reads the node's current role ([`Database::role`]: `.primary`, `.lag`, `/info`),
//! because LiteFS can move the primary lease while caje runs:
//! - primary: the pass holds nothing. HALT would be a no-op there; skipping it saves a thread and
//!   a FUSE round trip per batch.
//! - replica, connected or not, or a role that cannot be read: the pass holds HALT, taken within
//!   `[litefs] halt_timeout` and released when the writer drops the pass after `COMMIT`. HALT is
//!   correct on any role, so doubt costs only speed.
//! - When HALT cannot be had (no primary: EIO at once; a primary that does not grant it: EIO
//!   after LiteFS's 10 s; `halt_timeout`), entering fails, and the writer keeps the batch and
//!   retries it with backoff (`retry_min` … `retry_max`) like any failed write. `record` never
//!   waits on any of this, so client requests never do.
//! - A role read just before it changes is harmless: a primary that just lost the lease writes
//!   like a replica without HALT, SQLite refuses ("attempt to write a readonly database") and the
//!   batch is retried; a replica that just won the lease takes a no-op HALT.
//!
//! # How long a replica holds HALT
//!
//! The pass covers: topping the batch up from the in-memory queue; one `BEGIN IMMEDIATE …
//! COMMIT` of at most `batch_max_rows` upserts (default 500, capped at 10 000), whose commit
//! LiteFS forwards to the primary; and, only after a failed attempt, reopening the connection
//! (schema check and a rolled-back write probe). No other node writes while HALT is held, so
//! SQLite lock waits inside are for this node's own readers, each bounded by `busy_timeout`.
//! The `litefs_halt` benchmark measures a 500-row batch at tens of milliseconds on a local
//! cluster: far inside the 30 s after which the primary drops a HALT. Should a batch ever take
//! that long, its commit fails, the rollback journal undoes it and the batch is retried; nothing
//! is lost. A pass held longer than 10 s is logged.
//!
//! # Schema
//!
//! Only the primary migrates ([`OpenOptions::for_litefs`]). A replica opens with
//! [`SchemaMode::Await`] and waits up to `manifest.schema_wait` for the primary's caje to create
//! the schema and LiteFS to replicate it. A replica could create the file and migrate it under
//! HALT, but then two nodes may create the same database independently; one writer of the
//! schema keeps that out. During a rolling deploy that adds a migration, a replica running the
//! newer build waits until the primary runs it too (after `schema_wait` it exits, and LiteFS's
//! supervisor starts it again).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use metrics::histogram;
use tracing::{debug, info, warn};

use super::gate::{GatePass, WriteGate};
use super::open::{OpenOptions, SchemaMode};
use crate::litefs::{Database, Halt, Role};
use crate::sync::lock;

/// A pass held longer than this is logged: a third of the 30 s after which LiteFS's primary
/// drops a HALT.
const HOLD_WARNING: Duration = Duration::from_secs(10);

/// The [`WriteGate`] of a manifest whose database is on a LiteFS mount.
pub struct HaltGate {
    database: Database,
    /// The role seen last, to log changes.
    role: Mutex<Role>,
}

impl HaltGate {
    /// A gate for `database`, whose node currently plays `role`.
    pub fn new(database: Database, role: Role) -> HaltGate {
        HaltGate {
            database,
            role: Mutex::new(role),
        }
    }

    /// Whether this node is the primary right now; `false` when that cannot be read.
    async fn is_primary(&self) -> bool {
        let role = match self.database.role().await {
            Ok(role) => role,
            Err(error) => {
                debug!(
                    "cannot read this node's LiteFS role, taking HALT (right on any role): {error}"
                );
                return false;
            }
        };
        let mut last = lock(&self.role);
        if *last != role {
            info!(
                database = %self.database.path().display(),
                "LiteFS role changed from {last} to {role}"
            );
            *last = role;
        }
        last.is_primary()
    }
}

impl WriteGate for HaltGate {
    fn enter(&self) -> BoxFuture<'_, io::Result<GatePass>> {
        Box::pin(async move {
            if self.is_primary().await {
                return Ok(Box::new(()) as GatePass);
            }
            let asked = Instant::now();
            let halt = self.database.halt().await.map_err(io::Error::other)?;
            histogram!("caje_litefs_halt_wait_seconds").record(asked.elapsed().as_secs_f64());
            Ok(Box::new(HaltPass {
                _halt: halt,
                taken: Instant::now(),
            }) as GatePass)
        })
    }
}

/// HALT held for one transaction; dropping it releases HALT (the guard's own drop).
struct HaltPass {
    _halt: Halt,
    taken: Instant,
}

impl Drop for HaltPass {
    fn drop(&mut self) {
        let held = self.taken.elapsed();
        histogram!("caje_litefs_halt_held_seconds").record(held.as_secs_f64());
        if held > HOLD_WARNING {
            warn!(
                ?held,
                "a manifest write held the LiteFS HALT lock for long; the primary's writes wait \
                 meanwhile, and LiteFS drops a HALT after 30 s: lower manifest.batch_max_rows"
            );
        }
    }
}

impl OpenOptions {
    /// How a node opens a manifest that is on LiteFS, given its role at start: always through a
    /// [`HaltGate`] (the role may change later); the primary migrates the schema, every other
    /// node waits up to `schema_wait` for it to arrive from the primary.
    pub fn for_litefs(database: Database, role: Role, schema_wait: Duration) -> OpenOptions {
        let schema = if role.is_primary() {
            SchemaMode::Migrate
        } else {
            SchemaMode::Await {
                timeout: schema_wait,
            }
        };
        OpenOptions {
            gate: Arc::new(HaltGate::new(database, role)),
            schema,
        }
    }
}

//! The write gate: the hook every manifest write transaction passes through.
//! On a LiteFS replica it is the HALT lock; everywhere else it is [`NoGate`].

use std::io;

use futures_util::future::BoxFuture;

/// Proof of having entered the gate; dropping it leaves the gate.
pub type GatePass = Box<dyn Send>;

/// Taken by the writer before `BEGIN` and held until after `COMMIT` (and across migrations).
///
/// The writer enters the gate once per batch, per purge or clear, and once when it opens or
/// reopens its connection. It never enters twice at once: the writer is one task with one
/// connection, so an implementation may hold a single lock file descriptor.
pub trait WriteGate: Send + Sync + 'static {
    /// Waits until writing is allowed. An error fails this attempt; the writer retries a batch
    /// with backoff and reports the error to an admin caller.
    fn enter(&self) -> BoxFuture<'_, io::Result<GatePass>>;
}

/// The gate of a node that may always write (a primary, or no LiteFS at all).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGate;

impl WriteGate for NoGate {
    fn enter(&self) -> BoxFuture<'_, io::Result<GatePass>> {
        Box::pin(async { Ok(Box::new(()) as GatePass) })
    }
}

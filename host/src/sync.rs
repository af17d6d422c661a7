//! Sharing work and state across threads the same way everywhere: [`blocking`] for blocking
//! work, [`lock`] (with [`read`], [`write`]) for the one rule on poisoned locks.

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, recovering it when a thread panicked while holding it.
///
/// The rule, for every lock in caje: a poisoned lock is recovered, never propagated. Each
/// critical section leaves its data consistent between statements (counters, maps of small
/// values, a queue whose items are whole), so what a panicking holder left is still usable,
/// and a panic in one request or task must not turn every later request that takes the lock
/// into a panic too.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`]'s rule for a shared read of an `RwLock`.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`]'s rule for an exclusive write of an `RwLock`.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs blocking `work` on tokio's blocking pool. A panic (or a runtime shutting down) in it
/// becomes an I/O error saying so, returned like the failures the work reports itself.
pub async fn blocking<T, E, F>(work: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<io::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(io::Error::other(format!("blocking work did not finish: {join}")).into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_recovered_with_its_data() {
        let shared = std::sync::Arc::new(Mutex::new(vec![1]));
        let holder = shared.clone();
        let panicked = std::thread::spawn(move || {
            let mut data = holder.lock().unwrap();
            data.push(2);
            panic!("the holder panics");
        })
        .join();
        assert!(panicked.is_err() && shared.is_poisoned());
        assert_eq!(*lock(&shared), [1, 2]);
    }

    #[tokio::test]
    async fn blocking_work_returns_its_result_and_a_panic_is_an_error() {
        assert_eq!(blocking(|| Ok::<_, io::Error>(7)).await.unwrap(), 7);
        let err = blocking(|| -> io::Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
    }
}

//! The LiteFS HALT lock: a replica takes it to write, which pauses the primary's writers until
//! the replica lets go.
//!
//! How LiteFS 0.5 implements it (`fuse/lock_node.go`, `db.go`), and what follows for us:
//! - HALT is a write lock on byte 72 of `<db>-lock`, a virtual file LiteFS serves next to each
//!   database that exists. Only the blocking form reaches LiteFS's handler: `F_OFD_SETLK` and read
//!   locks get ENOSYS, a second lock through the same open file gets ENOLCK. We use OFD locks,
//!   not POSIX ones (which any close of any descriptor of the file in the process would drop).
//! - The file is opened `O_RDWR | O_CLOEXEC` and never with `O_CREAT`: a missing file means the
//!   database does not exist (yet) on this node, which the caller must hear about.
//! - ANY close of ANY copy of the descriptor releases HALT: LiteFS's FUSE flush handler unlocks
//!   whoever closes. That includes the copy a child process inherits when another thread spawns
//!   one, closed at exec even with `O_CLOEXEC` (seen on a real cluster). So the descriptor lives
//!   in a private descriptor table: each HALT is held by a dedicated thread that first unshares
//!   its table keeping only stdin/out/err (`close_range(3, ~0, CLOSE_RANGE_UNSHARE)`, Linux ≥
//!   5.9), then opens, locks, waits for the release, unlocks and closes. Spawning processes
//!   elsewhere in caje is then safe; the holder thread itself never spawns anything.
//! - On a replica, LiteFS asks the primary for the lock over HTTP, waits until the replica has
//!   caught up, and gives up after 10 s with EIO (also EIO at once when there is no primary). The
//!   primary drops a HALT held longer than 30 s. On the primary, HALT succeeds as a no-op.
//! - Within one process, callers queue on an async semaphore per lock file before a thread is
//!   started, so they wait their turn instead of stacking requests on LiteFS. The turn passes on
//!   only once the previous holder has unlocked and closed.
//! - The holder thread cannot wake async tasks (tokio's waker writes to a descriptor its table no
//!   longer has), so a relay task on tokio's blocking pool carries its reports over a std channel.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::libc;
use nix::sys::stat::Mode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::error::{Error, HaltStep};

/// The byte of `<db>-lock` that LiteFS treats as HALT (`LockTypeHalt`).
pub const HALT_BYTE: i64 = 72;

/// `<db>-lock`, the file LiteFS serves for HALT next to `database`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

/// What the holder thread reports, in this order.
enum Report {
    Granted(Result<(), Error>),
    /// `dropped`: the guard was dropped rather than released, so nobody awaits the result.
    Released {
        result: Result<(), Error>,
        dropped: bool,
    },
}

/// A held HALT lock. Dropping it releases HALT without blocking (failures are logged);
/// [`Halt::release`] does the same and reports failures.
#[must_use = "HALT is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Halt {
    path: PathBuf,
    /// Tells the holder thread to let go; dropping it does too.
    release: mpsc::Sender<()>,
    /// Relays the holder's reports to async code and gives the queue turn back afterwards.
    relay: JoinHandle<Result<(), Error>>,
}

impl Halt {
    /// Takes HALT on `lock_path` (a `<db>-lock` file), waiting at most `timeout` in total: for
    /// other holders in this process, then for LiteFS.
    ///
    /// When the bound passes while LiteFS is still deciding, the attempt goes on in the
    /// background and gives HALT back at once if it is granted late.
    pub async fn acquire(lock_path: &Path, timeout: Duration) -> Result<Halt, Error> {
        let path = std::path::absolute(lock_path).unwrap_or_else(|_| lock_path.to_path_buf());
        let started = Instant::now();
        let attempt = async {
            let turn = turn_for(&path)
                .acquire_owned()
                .await
                .expect("HALT queues are never closed");
            let (release_tx, release_rx) = mpsc::channel();
            let (report_tx, report_rx) = mpsc::channel();
            let holder = path.clone();
            std::thread::Builder::new()
                .name("litefs-halt".into())
                .spawn(move || hold(&holder, &report_tx, &release_rx))
                .map_err(|e| Error::Halt {
                    path: path.clone(),
                    step: HaltStep::Isolate,
                    errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                })?;
            let (granted_tx, granted_rx) = oneshot::channel();
            let relay = tokio::task::spawn_blocking(move || relay(report_rx, granted_tx, turn));
            granted_rx
                .await
                .expect("the HALT relay reports the grant")?;
            Ok(Halt {
                path: path.clone(),
                release: release_tx,
                relay,
            })
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(halt)) => {
                tracing::debug!(path = %path.display(), waited = ?started.elapsed(), "LiteFS HALT taken");
                Ok(halt)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::HaltTimeout {
                path,
                waited: started.elapsed(),
            }),
        }
    }

    /// The `<db>-lock` file this guard holds.
    pub fn lock_path(&self) -> &Path {
        &self.path
    }

    /// Releases HALT (`F_UNLCK` on the same descriptor, then close) and reports what failed,
    /// e.g. EIO when the primary went away while we held it.
    pub async fn release(self) -> Result<(), Error> {
        self.release
            .send(())
            .expect("the HALT holder waits for its release");
        self.relay
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

/// Runs on tokio's blocking pool, where waking async tasks works: forwards the grant, then waits
/// for the release before giving this process's turn to the next caller.
fn relay(
    reports: mpsc::Receiver<Report>,
    granted: oneshot::Sender<Result<(), Error>>,
    turn: OwnedSemaphorePermit,
) -> Result<(), Error> {
    let mut granted = Some(granted);
    let outcome = loop {
        match reports.recv() {
            Ok(Report::Granted(result)) => {
                if let Some(granted) = granted.take() {
                    let _ = granted.send(result);
                }
            }
            Ok(Report::Released { result, dropped }) => {
                if dropped && let Err(e) = &result {
                    tracing::warn!("releasing a dropped LiteFS HALT guard: {e}");
                }
                break result;
            }
            // The holder ended without a release: its grant failed, nothing is held.
            Err(_) => break Ok(()),
        }
    };
    drop(turn);
    outcome
}

/// The holder thread: isolate, open, lock, report, wait for the release, unlock, close, report.
/// It touches no tokio or tracing machinery: those use descriptors its private table lacks.
fn hold(path: &Path, reports: &mpsc::Sender<Report>, release: &mpsc::Receiver<()>) {
    let locked = private_descriptor_table(path).and_then(|()| open_and_lock(path, release));
    let fd = match locked {
        Ok(fd) => fd,
        Err(e) => {
            let _ = reports.send(Report::Granted(Err(e)));
            return;
        }
    };
    let _ = reports.send(Report::Granted(Ok(())));
    // An error means the guard was dropped, or the caller stopped waiting: release all the same.
    let dropped = release.recv().is_err();
    let result = unlock_and_close(path, fd);
    let _ = reports.send(Report::Released { result, dropped });
}

/// Gives this thread its own descriptor table holding only 0, 1 and 2, so a process spawned by
/// another thread cannot inherit (and, by closing it, release) the HALT descriptor.
fn private_descriptor_table(path: &Path) -> Result<(), Error> {
    let all_but_stdio = libc::c_uint::MAX;
    // SAFETY: close_range takes no pointers. With CLOSE_RANGE_UNSHARE the kernel first gives
    // this thread a private copy of the descriptor table, so only that copy loses descriptors;
    // the rest of the process keeps all of its own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            all_but_stdio,
            libc::CLOSE_RANGE_UNSHARE,
        )
    };
    Errno::result(rc).map(drop).map_err(|errno| Error::Halt {
        path: path.to_path_buf(),
        step: HaltStep::Isolate,
        errno,
    })
}

fn open_and_lock(path: &Path, release: &mpsc::Receiver<()>) -> Result<OwnedFd, Error> {
    let failed = |step, errno| Error::Halt {
        path: path.to_path_buf(),
        step,
        errno,
    };
    let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| failed(HaltStep::Open, errno))?;
    let write = halt_range(libc::F_WRLCK);
    loop {
        match fcntl(&fd, FcntlArg::F_OFD_SETLKW(&write)) {
            Ok(_) => return Ok(fd),
            Err(Errno::EINTR) if !caller_gone(release) => {}
            Err(errno) => return Err(failed(HaltStep::Lock, errno)),
        }
    }
}

fn caller_gone(release: &mpsc::Receiver<()>) -> bool {
    matches!(release.try_recv(), Err(mpsc::TryRecvError::Disconnected))
}

fn unlock_and_close(path: &Path, fd: OwnedFd) -> Result<(), Error> {
    let failed = |step, errno| Error::Halt {
        path: path.to_path_buf(),
        step,
        errno,
    };
    let unlock = halt_range(libc::F_UNLCK);
    let unlocked = loop {
        match fcntl(&fd, FcntlArg::F_OFD_SETLK(&unlock)) {
            Err(Errno::EINTR) => {}
            other => break other.map(drop),
        }
    };
    let closed = nix::unistd::close(fd);
    unlocked
        .map_err(|errno| failed(HaltStep::Unlock, errno))
        .and(closed.map_err(|errno| failed(HaltStep::Close, errno)))
}

fn halt_range(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: HALT_BYTE,
        l_len: 1,
        l_pid: 0,
    }
}

/// The per-lock-file queue of this process. One entry per database ever halted: a handful.
fn turn_for(path: &Path) -> Arc<Semaphore> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> = OnceLock::new();
    let mut queues = QUEUES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Arc::clone(
        queues
            .entry(path.to_path_buf())
            .or_insert_with(|| Arc::new(Semaphore::new(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_appends_the_suffix() {
        assert_eq!(
            lock_path(Path::new("/litefs/manifest.db")),
            Path::new("/litefs/manifest.db-lock")
        );
    }
}

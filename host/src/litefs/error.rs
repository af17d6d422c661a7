//! Errors of the LiteFS module, each saying what went wrong and what to do about it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

/// The step of taking or giving back HALT that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltStep {
    /// Starting the holder thread and giving it a private descriptor table.
    Isolate,
    /// Opening `<db>-lock`.
    Open,
    /// `F_OFD_SETLKW` with `F_WRLCK`.
    Lock,
    /// `F_OFD_SETLK` with `F_UNLCK`.
    Unlock,
    /// Closing the descriptor.
    Close,
}

/// Everything that can go wrong in this module.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `require = true` but the database is not on a LiteFS mount.
    NotOnLitefs { database: PathBuf },
    /// The database sits below a LiteFS mount's root; LiteFS only serves files at its root.
    NotAtMountRoot { database: PathBuf, mount: PathBuf },
    /// Reading a file (mountinfo, `.primary`, `.lag`) failed.
    Read { path: PathBuf, source: io::Error },
    /// `.lag` did not hold a signed number of milliseconds.
    BadLag { path: PathBuf, content: String },
    /// `GET /info` on LiteFS's HTTP API failed.
    Info { addr: String, reason: String },
    /// A system call on `<db>-lock` failed.
    Halt {
        path: PathBuf,
        step: HaltStep,
        errno: Errno,
    },
    /// HALT was not granted within the configured bound.
    HaltTimeout { path: PathBuf, waited: Duration },
}

impl Error {
    /// The errno behind a failed HALT system call, so callers can tell "no primary" (EIO) apart.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Halt { errno, .. } => Some(*errno),
            Error::Read { source, .. } => source.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotOnLitefs { database } => write!(
                f,
                "{} is not on a LiteFS mount, but [litefs] require = true; point the database at \
                 the LiteFS mount (e.g. /litefs/manifest.db) or set require = false",
                database.display()
            ),
            Error::NotAtMountRoot { database, mount } => write!(
                f,
                "{} is in a subdirectory of the LiteFS mount {}; LiteFS only serves databases at \
                 the mount's root, so use {}/<name>.db",
                database.display(),
                mount.display(),
                mount.display()
            ),
            Error::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            Error::BadLag { path, content } => write!(
                f,
                "{} holds {content:?}, not a number of milliseconds; is this a LiteFS mount of a \
                 supported version (0.5)?",
                path.display()
            ),
            Error::Info { addr, reason } => write!(
                f,
                "cannot ask LiteFS at http://{addr}/info for the node's role: {reason}; check \
                 [litefs] http_addr against http.addr in litefs.yml"
            ),
            Error::Halt { path, step, errno } => halt_message(f, path, *step, *errno),
            Error::HaltTimeout { path, waited } => write!(
                f,
                "gave up waiting for the LiteFS HALT lock on {} after {}; another writer in this \
                 process held it that long or the primary is slow; retry, or raise [litefs] \
                 halt_timeout",
                path.display(),
                humantime::format_duration(*waited)
            ),
        }
    }
}

fn halt_message(
    f: &mut fmt::Formatter<'_>,
    path: &std::path::Path,
    step: HaltStep,
    errno: Errno,
) -> fmt::Result {
    let path = path.display();
    match (step, errno) {
        (HaltStep::Isolate, Errno::ENOSYS | Errno::EINVAL) => write!(
            f,
            "cannot give the thread holding the LiteFS HALT lock on {path} its own descriptor \
             table ({errno}): HALT needs Linux 5.9 or later (close_range with CLOSE_RANGE_UNSHARE)"
        ),
        (HaltStep::Open, Errno::ENOENT) => write!(
            f,
            "{path} does not exist (ENOENT): LiteFS serves it only next to a database that exists \
             on this node; open (create) the database before taking HALT (a replica may create \
             it and then write it under HALT), and check that the path is on the LiteFS mount"
        ),
        (HaltStep::Lock, Errno::ENOSYS) => write!(
            f,
            "LiteFS refused the HALT lock on {path} (ENOSYS): HALT must be a blocking OFD write \
             lock (F_OFD_SETLKW, F_WRLCK, byte 72); if it was, this file is not served by LiteFS"
        ),
        (HaltStep::Lock, Errno::EIO) => write!(
            f,
            "cannot take the LiteFS HALT lock on {path} (EIO): this replica has no reachable \
             primary, or the primary did not grant HALT within LiteFS's 10 s; check that the \
             primary is up (`.primary` in the mount), then retry"
        ),
        (HaltStep::Lock, Errno::ENOLCK) => write!(
            f,
            "the LiteFS HALT lock on {path} is already held or awaited through this descriptor \
             (ENOLCK); release it before taking it again"
        ),
        (HaltStep::Unlock | HaltStep::Close, Errno::EIO) => write!(
            f,
            "LiteFS could not hand the HALT lock on {path} back to the primary (EIO): the primary \
             is unreachable or already dropped it (it expires HALT after 30 s); nothing to undo \
             here, but the last transaction may not have reached the primary: check it"
        ),
        (step, errno) => write!(
            f,
            "{} {path} for the LiteFS HALT lock failed: {errno} ({})",
            match step {
                HaltStep::Isolate => "starting the thread that holds",
                HaltStep::Open => "opening",
                HaltStep::Lock => "locking",
                HaltStep::Unlock => "unlocking",
                HaltStep::Close => "closing",
            },
            errno.desc()
        ),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::Halt { errno, .. } => Some(errno),
            _ => None,
        }
    }
}

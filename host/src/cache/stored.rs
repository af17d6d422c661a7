//! A stored response as the proxy serves it: decoded head, ready-made headers, and where the body is.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bytes::Bytes;

use super::entry::EntryHead;
use crate::key::Key;

pub struct Entry {
    pub key: Key,
    /// Its headers are cloned for each response.
    pub head: EntryHead,
    pub body: StoredBody,
}

pub enum StoredBody {
    /// Small bodies, verified when loaded.
    Memory(Bytes),
    /// Large bodies stay on disk: verified when loaded, re-verified if the file changes.
    File {
        path: PathBuf,
        offset: u64,
        stamp: FileStamp,
    },
}

/// Identifies one version of a file, so a body verified once is re-verified if anything rewrites it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    inode: u64,
    len: u64,
    modified_nanos: i128,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            inode: meta.ino(),
            len: meta.len(),
            modified_nanos: i128::from(meta.mtime()) * 1_000_000_000
                + i128::from(meta.mtime_nsec()),
        }
    }
}

impl Entry {
    /// The entry's body is still the one that was verified (always true for memory bodies).
    pub fn body_is_current(&self) -> bool {
        match &self.body {
            StoredBody::Memory(_) => true,
            StoredBody::File { path, stamp, .. } => {
                std::fs::metadata(path).is_ok_and(|meta| FileStamp::of(&meta) == *stamp)
            }
        }
    }

    /// The response named a `Vary` header: requests must match its stored values.
    pub fn varies(&self) -> bool {
        !self.head.vary.is_empty()
    }
}

//! The body store on the local filesystem: `cache_dir/ab/<key>`, written to a temp file and renamed.
//!
//! One level of 256 directories: a second level (65,536 directories) made a cold cache create a
//! directory for almost every fill, doubling the inodes a fill allocates.
//! A file that fails to decode or verify is removed and reported as absent, never served.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use xxhash_rust::xxh3::Xxh3;

use super::entry::{self, EntryError, MAGIC, Record, TRAILER_LEN};
use super::stored::{Entry, FileStamp, StoredBody};
use crate::key::Key;

const TEMP_PREFIX: &str = ".tmp.";
/// Hex digits of the URL digest that name an entry's directory.
const SHARD_DIGITS: usize = 2;
const VERIFY_CHUNK: usize = 1 << 20;

pub struct DiskStore {
    root: PathBuf,
    /// Marks this instance's temp files, so a sweep never removes a fill that is still running.
    instance: String,
    temp_counter: AtomicU64,
}

/// A file's record, loaded and verified.
pub enum Loaded {
    Entry(Box<Entry>),
    Vary(Vec<String>),
}

impl DiskStore {
    pub fn open(root: &Path) -> io::Result<DiskStore> {
        fs::create_dir_all(root).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot create cache_dir {}: {err}", root.display()),
            )
        })?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let instance = format!("{}-{}", std::process::id(), started.as_nanos());
        Ok(DiskStore {
            root: root.to_owned(),
            instance,
            temp_counter: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard(&self, key: &Key) -> PathBuf {
        self.shard_of(key.url_digest())
    }

    fn shard_of(&self, url_digest: &str) -> PathBuf {
        self.root.join(&url_digest[..SHARD_DIGITS])
    }

    pub fn path(&self, key: &Key) -> PathBuf {
        self.shard(key).join(key.as_str())
    }

    /// A new temp file beside the key's final path (same directory, so the rename is atomic).
    pub fn create_temp(&self, key: &Key) -> io::Result<(File, PathBuf)> {
        let shard = self.shard(key);
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let path = shard.join(format!(
            "{TEMP_PREFIX}{}.{}.{n}",
            key.as_str(),
            self.instance
        ));
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
        };
        // The directory almost always exists: create it only when the open says it does not.
        let file = match open() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&shard)?;
                open()?
            }
            opened => opened?,
        };
        Ok((file, path))
    }

    /// Writes a whole small record (a vary record) atomically.
    pub fn write_record(&self, key: &Key, record: &Record, fsync: bool) -> io::Result<()> {
        let (file, temp) = self.create_temp(key)?;
        let result = (|| {
            file.write_all_at(&entry::encode(record, &[]), 0)?;
            self.publish(&file, &temp, key, fsync)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Makes a fully written temp file the key's entry.
    pub fn publish(&self, file: &File, temp: &Path, key: &Key, fsync: bool) -> io::Result<()> {
        if fsync {
            file.sync_data()?;
        }
        fs::rename(temp, self.path(key))
    }

    /// Opens a key's file: `Ok(None)` when there is none.
    pub fn open_entry(&self, key: &Key) -> io::Result<Option<File>> {
        match File::open(self.path(key)) {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads and verifies a key's file that [`open_entry`](Self::open_entry) returned. Corrupt or
    /// foreign files are removed and reported as `Ok(None)`.
    pub fn load_opened(
        &self,
        key: &Key,
        file: &File,
        memory_max_object: u64,
    ) -> io::Result<Option<Loaded>> {
        let path = self.path(key);
        match read_verified(key, &path, file, memory_max_object) {
            Ok(loaded) => Ok(Some(loaded)),
            Err(LoadError::Io(err)) => Err(err),
            Err(LoadError::Entry(err)) => {
                metrics::counter!("caje_cache_corrupt_entries_total").increment(1);
                tracing::warn!(path = %path.display(), error = %err, "removing a cache file that does not verify; treating it as a miss");
                let _ = fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Removes every file of one URL (all policy components and variants). Returns how many went.
    pub fn remove_url(&self, url_digest: &str) -> io::Result<usize> {
        let mut removed = 0;
        for key in self.keys_of_url(url_digest)? {
            if self.remove(&key)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The keys of every file of one URL (all policy components and variants, and its vary record).
    pub fn keys_of_url(&self, url_digest: &str) -> io::Result<Vec<Key>> {
        let shard = self.shard_of(url_digest);
        let dir = match fs::read_dir(&shard) {
            Ok(dir) => dir,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut keys = Vec::new();
        for item in dir {
            let item = item?;
            if let Some(key) = item
                .file_name()
                .to_str()
                .filter(|name| name.starts_with(url_digest))
                .and_then(Key::parse)
            {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Reads a key's head without its body (for listings): `Ok(None)` when the file is missing
    /// or is not a readable entry. Serving still verifies the whole file through [`load`](Self::load).
    pub fn load_head(&self, key: &Key) -> io::Result<Option<Record>> {
        let file = match File::open(self.path(key)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        match read_record(&file) {
            Ok((record, _)) => Ok(Some(record)),
            Err(LoadError::Io(err)) => Err(err),
            Err(LoadError::Entry(_)) => Ok(None),
        }
    }

    pub fn remove(&self, key: &Key) -> io::Result<bool> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Calls `visit` with the key of every entry file; with `sweep_temp`, removes temp files that
    /// earlier instances (a crash, a kill) left behind.
    pub fn walk(&self, sweep_temp: bool, mut visit: impl FnMut(Key, &Path)) -> io::Result<()> {
        self.walk_after(None, sweep_temp, |key, path| {
            visit(key, path);
            ControlFlow::Continue(())
        })
    }

    /// Like [`walk`](Self::walk), in key order, starting after `after` and stopping when `visit`
    /// breaks. Keys sort by their URL digest, whose first two hex digits name the shard
    /// directories, so whole directories before `after` are skipped without being read.
    pub fn walk_after(
        &self,
        after: Option<&Key>,
        sweep_temp: bool,
        mut visit: impl FnMut(Key, &Path) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let after = after.map_or("", Key::as_str);
        // A directory is skipped when its name sorts before the same number of `after`'s digits.
        let before = |name: &str| name < &after[..name.len().min(after.len())];
        for shard in read_dir_sorted(&self.root)? {
            if before(file_name(&shard)) {
                continue;
            }
            for file in read_dir_sorted(&shard)? {
                let name = file_name(&file);
                if name.starts_with(TEMP_PREFIX) {
                    if sweep_temp && !name.contains(&self.instance) {
                        let _ = fs::remove_file(&file);
                    }
                } else if name > after
                    && let Some(key) = Key::parse(name)
                    && visit(key, &file).is_break()
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

fn read_dir_sorted(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = match fs::read_dir(dir) {
        Ok(items) => items
            .filter_map(|item| item.ok().map(|item| item.path()))
            .collect::<Vec<_>>(),
        Err(err)
            if err.kind() == io::ErrorKind::NotFound
                || err.kind() == io::ErrorKind::NotADirectory =>
        {
            return Ok(Vec::new());
        }
        Err(err) => return Err(err),
    };
    paths.sort();
    Ok(paths)
}

enum LoadError {
    Io(io::Error),
    Entry(EntryError),
}

impl From<EntryError> for LoadError {
    fn from(err: EntryError) -> Self {
        LoadError::Entry(err)
    }
}

impl From<io::Error> for LoadError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            LoadError::Entry(EntryError::Truncated)
        } else {
            LoadError::Io(err)
        }
    }
}

fn read_verified(
    key: &Key,
    path: &Path,
    file: &File,
    memory_max_object: u64,
) -> Result<Loaded, LoadError> {
    let (record, head_start) = read_record(file)?;
    let head = match record {
        Record::Vary(names) => return Ok(Loaded::Vary(names)),
        Record::Response(head) => *head,
    };
    let body_offset = MAGIC.len() as u64;
    if head.body_len != head_start - body_offset {
        return Err(EntryError::Corrupt("body length").into());
    }
    let body = if head.body_len <= memory_max_object {
        let mut body = vec![0u8; head.body_len as usize];
        file.read_exact_at(&mut body, body_offset)?;
        if xxhash_rust::xxh3::xxh3_64(&body) != head.body_checksum {
            return Err(EntryError::Checksum.into());
        }
        StoredBody::Memory(Bytes::from(body))
    } else {
        verify_streaming(file, body_offset, head.body_len, head.body_checksum)?;
        StoredBody::File {
            path: path.to_owned(),
            offset: body_offset,
            stamp: FileStamp::of(&file.metadata()?),
        }
    };
    Ok(Loaded::Entry(Box::new(Entry {
        key: key.clone(),
        head,
        body,
    })))
}

/// Reads and checks magic, trailer and head; returns the record and where the head starts.
fn read_record(file: &File) -> Result<(Record, u64), LoadError> {
    let len = file.metadata()?.len();
    let mut magic = [0u8; MAGIC.len()];
    file.read_exact_at(&mut magic, 0)?;
    if &magic != MAGIC {
        return Err(EntryError::Foreign.into());
    }
    if len < entry::OVERHEAD {
        return Err(EntryError::Truncated.into());
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact_at(&mut trailer, len - TRAILER_LEN)?;
    let (head_start, head_len, checksum) = entry::parse_trailer(len, &trailer)?;
    let mut head = vec![0u8; head_len as usize];
    file.read_exact_at(&mut head, head_start)?;
    Ok((entry::decode_head(&head, checksum)?, head_start))
}

fn verify_streaming(file: &File, offset: u64, len: u64, expected: u64) -> Result<(), LoadError> {
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; VERIFY_CHUNK];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(VERIFY_CHUNK as u64) as usize;
        file.read_exact_at(&mut buffer[..want], offset + done)?;
        hasher.update(&buffer[..want]);
        done += want as u64;
    }
    if hasher.digest() != expected {
        return Err(EntryError::Checksum.into());
    }
    Ok(())
}

//! Finding the LiteFS mount that serves a database, and reading its `.primary` and `.lag` files.
//!
//! Detection reads `/proc/self/mountinfo` rather than probing for `.lag`: it never touches the
//! FUSE file system (a wedged LiteFS would hang the probe) and it cannot be fooled by a stray file
//! of that name. LiteFS 0.5 mounts with `FSName("litefs")` and no subtype, so its line reads
//! `... - fuse litefs rw,...`; `fuse.litefs` is accepted too in case a later version sets one.

use std::io;
use std::path::{Path, PathBuf};

use super::error::Error;
use super::lag::Lag;

const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Exists only on a replica connected to a primary; holds the primary's hostname and a newline.
const PRIMARY_FILE: &str = ".primary";
/// Milliseconds behind the primary, `%+010d` formatted; always present.
const LAG_FILE: &str = ".lag";

/// A LiteFS FUSE mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// The LiteFS mount whose root holds `database`, or `None` when the database is on another
    /// file system. The database file itself need not exist yet; its directory must.
    pub fn for_database(database: &Path) -> Result<Option<Mount>, Error> {
        let parent = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = parent.canonicalize().map_err(|source| Error::Read {
            path: parent.to_path_buf(),
            source,
        })?;
        let mountinfo = std::fs::read_to_string(MOUNTINFO).map_err(|source| Error::Read {
            path: MOUNTINFO.into(),
            source,
        })?;
        let Some(entry) = covering_mount(&mountinfo, &dir) else {
            return Ok(None);
        };
        if !entry.is_litefs() {
            return Ok(None);
        }
        if entry.mount_point != dir {
            return Err(Error::NotAtMountRoot {
                database: database.to_path_buf(),
                mount: entry.mount_point,
            });
        }
        Ok(Some(Mount { dir }))
    }

    /// The mount's directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The primary's hostname when this node is a replica connected to it; `None` on the primary
    /// and on a replica without a primary.
    pub async fn primary_hostname(&self) -> Result<Option<String>, Error> {
        let path = self.dir.join(PRIMARY_FILE);
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text.trim_end().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// How far this node is behind the primary, from `.lag`.
    pub async fn lag(&self) -> Result<Lag, Error> {
        self.raw_lag().await.map(Lag::from_millis)
    }

    /// `.lag` as LiteFS wrote it: 0 exactly on the primary.
    pub(super) async fn raw_lag(&self) -> Result<i64, Error> {
        let path = self.dir.join(LAG_FILE);
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
        text.trim().parse().map_err(|_| Error::BadLag {
            path,
            content: text,
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    fs_type: String,
    source: String,
}

impl MountEntry {
    fn is_litefs(&self) -> bool {
        self.source == "litefs" && (self.fs_type == "fuse" || self.fs_type == "fuse.litefs")
    }
}

/// The mount that `dir` (canonical) lives on: the deepest mount point containing it; when several
/// are stacked on one point, the last listed (the one on top).
fn covering_mount(mountinfo: &str, dir: &Path) -> Option<MountEntry> {
    let mut best: Option<MountEntry> = None;
    for entry in mountinfo.lines().filter_map(parse_line) {
        if !dir.starts_with(&entry.mount_point) {
            continue;
        }
        let deeper = best.as_ref().is_none_or(|b| {
            entry.mount_point.components().count() >= b.mount_point.components().count()
        });
        if deeper {
            best = Some(entry);
        }
    }
    best
}

/// One line of mountinfo: `id parent major:minor root mount-point options [optional...] - type
/// source super-options` (proc(5)).
fn parse_line(line: &str) -> Option<MountEntry> {
    let (head, tail) = line.split_once(" - ")?;
    let mount_point = head.split(' ').nth(4)?;
    let mut tail = tail.split(' ');
    let fs_type = tail.next()?;
    let source = tail.next()?;
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: unescape(fs_type),
        source: unescape(source),
    })
}

/// mountinfo writes space, tab, newline and backslash as three-digit octal escapes (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
27 22 0:25 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
42 27 0:39 / /tmp/lfx/a/fuse rw,nosuid,nodev,relatime - fuse litefs rw,user_id=0,group_id=0
43 22 0:40 / /my\\040data rw,relatime shared:9 master:2 - fuse.litefs litefs rw
44 22 0:41 / /other rw,relatime - fuse sshfs rw
";

    fn covering(dir: &str) -> Option<MountEntry> {
        covering_mount(MOUNTINFO, Path::new(dir))
    }

    #[test]
    fn finds_the_deepest_covering_mount() {
        let entry = covering("/tmp/lfx/a/fuse").unwrap();
        assert_eq!(entry.mount_point, Path::new("/tmp/lfx/a/fuse"));
        assert!(entry.is_litefs());
        let entry = covering("/tmp/lfx/a").unwrap();
        assert_eq!(entry.mount_point, Path::new("/tmp"));
        assert!(!entry.is_litefs());
        assert_eq!(covering("/etc").unwrap().mount_point, Path::new("/"));
    }

    #[test]
    fn decodes_escapes_and_optional_fields() {
        let entry = covering("/my data").unwrap();
        assert_eq!(entry.mount_point, Path::new("/my data"));
        assert_eq!(entry.fs_type, "fuse.litefs");
        assert!(entry.is_litefs());
    }

    #[test]
    fn other_fuse_file_systems_are_not_litefs() {
        assert!(!covering("/other").unwrap().is_litefs());
    }

    #[test]
    fn later_mounts_on_the_same_point_win() {
        let stacked = format!("{MOUNTINFO}45 27 0:42 / /tmp/lfx/a/fuse rw - tmpfs tmpfs rw\n");
        let entry = covering_mount(&stacked, Path::new("/tmp/lfx/a/fuse")).unwrap();
        assert_eq!(entry.fs_type, "tmpfs");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("1 2 3 - fuse"), None);
    }

    #[test]
    fn a_database_on_an_ordinary_file_system_is_not_on_litefs() {
        let dir = std::env::temp_dir();
        assert_eq!(Mount::for_database(&dir.join("x.db")).unwrap(), None);
    }

    #[test]
    fn a_missing_directory_is_a_read_error() {
        let err = Mount::for_database(Path::new("/nonexistent-caje-dir/x.db")).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent-caje-dir"), "{err}");
    }
}

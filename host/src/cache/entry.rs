//! The on-disk entry format: `MAGIC | body | head (CBOR) | head length | head checksum | END`.
//! The head trails the body so a body can be streamed to disk before its length and checksum are known.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

pub const MAGIC: &[u8; 8] = b"CAJE\x00\x01\x00\x00";
const END: &[u8; 8] = b"CAJE.END";
/// Bytes after the body that are not the head: head length, head checksum, END.
pub const TRAILER_LEN: u64 = 24;
/// Bytes of a file that are not body or head.
pub const OVERHEAD: u64 = MAGIC.len() as u64 + TRAILER_LEN;
/// Heads are small; anything claiming more is corrupt.
const MAX_HEAD_LEN: u64 = 4 << 20;

/// What one cache file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    /// A stored response.
    Response(Box<EntryHead>),
    /// The URL's responses vary on these request headers: look up the variant key.
    Vary(Vec<String>),
}

/// Everything about a stored response except its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryHead {
    /// Canonical absolute URL of the request that filled the entry.
    pub url: String,
    /// Name of the origin it came from.
    pub origin: String,
    pub status: u16,
    /// Response headers to serve (hop-by-hop headers already removed); on disk a list of
    /// (name, bytes) pairs, converted once when the entry is encoded or decoded.
    #[serde(with = "header_list")]
    pub headers: HeaderMap,
    /// Built from the filtered canonical request: no Cookie or Authorization reaches the disk.
    pub policy: CachePolicy,
    pub timeline: Timeline,
    /// The response allows serving it to requests that carry `Authorization` (RFC 9111 §3.5).
    pub shared_with_authorization: bool,
    /// Names and request values of the headers the response varies on.
    pub vary: Vec<(String, Option<serde_bytes::ByteBuf>)>,
    pub tags: Vec<String>,
    pub body_len: u64,
    pub body_checksum: u64,
}

/// When an entry stops being fresh and how long it may be served stale (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub stored_at: u64,
    pub fresh_until: u64,
    /// Serve stale while refreshing in the background until this time.
    pub stale_while_revalidate_until: u64,
    /// Serve stale when the origin fails until this time.
    pub stale_if_error_until: u64,
    /// `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`: never serve it stale unvalidated.
    pub must_revalidate: bool,
}

impl Timeline {
    pub fn new(now: SystemTime, windows: &Windows) -> Timeline {
        let stored_at = millis(now);
        let fresh_until = stored_at.saturating_add(duration_millis(windows.ttl));
        Timeline {
            stored_at,
            fresh_until,
            stale_while_revalidate_until: fresh_until
                .saturating_add(duration_millis(windows.stale_while_revalidate)),
            stale_if_error_until: fresh_until
                .saturating_add(duration_millis(windows.stale_if_error)),
            must_revalidate: windows.must_revalidate,
        }
    }

    /// Seconds of freshness left at `now`; negative once stale.
    pub fn ttl_left(&self, now: SystemTime) -> i64 {
        (self.fresh_until as i64 - millis(now) as i64).div_euclid(1000)
    }

    /// Makes the entry stale now while keeping its stale windows' lengths (a soft purge).
    pub fn expire(&mut self, now: SystemTime) {
        let now = millis(now);
        if self.fresh_until > now {
            let shift = self.fresh_until - now;
            self.fresh_until = now;
            self.stale_while_revalidate_until =
                self.stale_while_revalidate_until.saturating_sub(shift);
            self.stale_if_error_until = self.stale_if_error_until.saturating_sub(shift);
        }
    }
}

/// How long a response stays fresh and may then be served stale, as decided when it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    pub must_revalidate: bool,
}

pub fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, duration_millis)
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl EntryHead {
    /// The names of the request headers the response varies on.
    pub fn vary_names(&self) -> Vec<String> {
        self.vary.iter().map(|(name, _)| name.clone()).collect()
    }
}

/// Why a file is not a usable entry. Every variant means: treat as a miss and remove the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not a caje entry (bad magic)")]
    Foreign,
    #[error("truncated entry")]
    Truncated,
    #[error("corrupt entry: {0}")]
    Corrupt(&'static str),
    #[error("entry checksum mismatch")]
    Checksum,
}

/// A header map as the entry format has always written it: a list of (name, value bytes)
/// pairs. A name or value that does not parse was never written by caje: the entry is corrupt.
mod header_list {
    use http::{HeaderMap, HeaderName, HeaderValue};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    pub fn serialize<S: Serializer>(headers: &HeaderMap, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(headers.len()))?;
        for (name, value) in headers {
            list.serialize_element(&(name.as_str(), Bytes::new(value.as_bytes())))?;
        }
        list.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<HeaderMap, D::Error> {
        use serde::de::Error;
        let list = Vec::<(String, ByteBuf)>::deserialize(deserializer)?;
        let mut headers = HeaderMap::with_capacity(list.len() + 3);
        for (name, value) in list {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| D::Error::custom("corrupt entry: header name"))?;
            let value = HeaderValue::from_bytes(&value)
                .map_err(|_| D::Error::custom("corrupt entry: header value"))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// Encodes the bytes that follow the body.
pub fn encode_trailer(record: &Record) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    ciborium::into_writer(record, &mut head).expect("writing CBOR to a Vec cannot fail");
    let head_len = head.len() as u64;
    let checksum = xxh3_64(&head);
    head.extend_from_slice(&head_len.to_le_bytes());
    head.extend_from_slice(&checksum.to_le_bytes());
    head.extend_from_slice(END);
    head
}

/// Reads the last [`TRAILER_LEN`] bytes of a file of `file_len` bytes: where the head starts and how long it is.
pub fn parse_trailer(file_len: u64, trailer: &[u8]) -> Result<(u64, u64, u64), EntryError> {
    if file_len < OVERHEAD || trailer.len() != TRAILER_LEN as usize {
        return Err(EntryError::Truncated);
    }
    if &trailer[16..24] != END {
        return Err(EntryError::Truncated);
    }
    let head_len = u64::from_le_bytes(trailer[0..8].try_into().expect("8 bytes"));
    let checksum = u64::from_le_bytes(trailer[8..16].try_into().expect("8 bytes"));
    if head_len > MAX_HEAD_LEN || head_len > file_len - OVERHEAD {
        return Err(EntryError::Corrupt("head length"));
    }
    let head_start = file_len - TRAILER_LEN - head_len;
    Ok((head_start, head_len, checksum))
}

/// Decodes a head whose checksum was read from the trailer.
pub fn decode_head(head: &[u8], checksum: u64) -> Result<Record, EntryError> {
    if xxh3_64(head) != checksum {
        return Err(EntryError::Checksum);
    }
    ciborium::from_reader(head).map_err(|_| EntryError::Corrupt("head encoding"))
}

/// Decodes a whole entry file held in memory, verifying magic, head and body checksums.
pub fn decode(file: &[u8]) -> Result<(Record, &[u8]), EntryError> {
    if file.len() < MAGIC.len() || &file[..MAGIC.len()] != MAGIC {
        return Err(EntryError::Foreign);
    }
    // Checked before the trailer is sliced off the end: a file shorter than it has none.
    if (file.len() as u64) < OVERHEAD {
        return Err(EntryError::Truncated);
    }
    let file_len = file.len() as u64;
    let (head_start, head_len, checksum) =
        parse_trailer(file_len, &file[file.len() - TRAILER_LEN as usize..])?;
    let head = &file[head_start as usize..(head_start + head_len) as usize];
    let record = decode_head(head, checksum)?;
    let body = &file[MAGIC.len()..head_start as usize];
    if let Record::Response(entry) = &record {
        if entry.body_len != body.len() as u64 {
            return Err(EntryError::Corrupt("body length"));
        }
        if xxh3_64(body) != entry.body_checksum {
            return Err(EntryError::Checksum);
        }
    } else if !body.is_empty() {
        return Err(EntryError::Corrupt("vary record with a body"));
    }
    Ok((record, body))
}

/// Encodes a whole entry file (used for small entries and vary records).
pub fn encode(record: &Record, body: &[u8]) -> Vec<u8> {
    let trailer = encode_trailer(record);
    let mut file = Vec::with_capacity(MAGIC.len() + body.len() + trailer.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(body);
    file.extend_from_slice(&trailer);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cache::fuzz`: a file holding the magic and less than a trailer made `decode`
    /// slice before its start (a panic instead of a miss).
    #[test]
    fn a_file_shorter_than_a_trailer_is_truncated_not_a_panic() {
        for extra in 0..TRAILER_LEN as usize {
            let mut file = MAGIC.to_vec();
            file.extend(std::iter::repeat_n(0u8, extra));
            assert_eq!(decode(&file).unwrap_err(), EntryError::Truncated, "{extra}");
        }
    }
}

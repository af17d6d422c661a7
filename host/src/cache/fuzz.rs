//! Property tests of the entry decoder, in memory and through the disk store's serving path:
//! no file, damaged or arbitrary, makes it panic or yield a body other than the stored one.
//!
//! Case counts are fixed so CI takes the same time every run.

use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use proptest::prelude::*;

use super::cache_options;
use super::entry::{self, EntryHead, Record, Timeline, Windows};
use super::store::{DiskStore, Loaded};
use super::stored::StoredBody;
use crate::key::Key;

const CASES: u32 = 512;

/// A valid entry file holding `body`.
fn entry_file(body: &[u8]) -> Vec<u8> {
    let request = http::Request::get("http://fuzz.test/x")
        .header("host", "fuzz.test")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let response = http::Response::builder()
        .header("cache-control", "max-age=60")
        .header("content-type", "text/plain")
        .body(())
        .expect("response")
        .into_parts()
        .0;
    let now = SystemTime::now();
    let policy =
        http_cache_semantics::CachePolicy::new_options(&request, &response, now, cache_options());
    let windows = Windows {
        ttl: std::time::Duration::from_secs(60),
        stale_while_revalidate: std::time::Duration::ZERO,
        stale_if_error: std::time::Duration::ZERO,
        must_revalidate: false,
    };
    let head = EntryHead {
        url: "http://fuzz.test/x".into(),
        origin: "origin".into(),
        status: 200,
        headers: http::HeaderMap::from_iter([(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        )]),
        policy,
        timeline: Timeline::new(now, &windows),
        shared_with_authorization: false,
        vary: Vec::new(),
        tags: vec!["t".into()],
        body_len: body.len() as u64,
        body_checksum: xxhash_rust::xxh3::xxh3_64(body),
    };
    entry::encode(&Record::Response(Box::new(head)), body)
}

/// What the in-memory decoder yields for `file`: `None` when it refuses it.
fn decoded_body(file: &[u8]) -> Option<Vec<u8>> {
    match entry::decode(file) {
        Ok((Record::Response(_), body)) => Some(body.to_vec()),
        Ok((Record::Vary(_), body)) => {
            assert!(body.is_empty(), "a vary record with a body decoded");
            None
        }
        Err(_) => None,
    }
}

/// What the disk store serves for `file` written as a key's entry (`memory_max` decides whether
/// the body is read into memory or verified as a stream); `None` when it refuses (and removes) it.
fn served_body(file: &[u8], memory_max: u64) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path()).expect("store");
    let key = Key::for_url("http://fuzz.test/x", &[]);
    let path = store.path(&key);
    std::fs::create_dir_all(path.parent().expect("shard")).expect("shard dir");
    std::fs::write(&path, file).expect("write entry");
    let opened = store
        .open_entry(&key)
        .expect("no I/O error on a temp dir")
        .expect("the entry was just written");
    let loaded = store
        .load_opened(&key, &opened, memory_max)
        .expect("no I/O error on a temp dir");
    let served = match loaded {
        None => {
            assert!(!path.exists(), "a refused file is removed");
            return None;
        }
        Some(Loaded::Vary(_)) => return None,
        Some(Loaded::Entry(entry)) => entry,
    };
    Some(match &served.body {
        StoredBody::Memory(bytes) => bytes.to_vec(),
        StoredBody::File { path, offset, .. } => {
            let mut body = vec![0u8; served.head.body_len as usize];
            std::fs::File::open(path)
                .and_then(|f| f.read_exact_at(&mut body, *offset))
                .expect("read the served body");
            body
        }
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_decode_to_a_body(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        magic in any::<bool>(),
    ) {
        let mut file = if magic { entry::MAGIC.to_vec() } else { Vec::new() };
        file.extend_from_slice(&bytes);
        prop_assert_eq!(decoded_body(&file), None);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused(body in body(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut file = entry_file(&body);
        prop_assert_eq!(decoded_body(&file), Some(body.clone()));
        let at = at.index(file.len());
        file[at] ^= 1 << bit;
        prop_assert_eq!(decoded_body(&file), None, "flip of bit {} at {}", bit, at);
    }

    #[test]
    fn a_truncated_file_is_refused(body in body(), cut in any::<prop::sample::Index>()) {
        let file = entry_file(&body);
        let len = cut.index(file.len());
        prop_assert_eq!(decoded_body(&file[..len]), None);
    }

    #[test]
    fn an_extended_file_never_yields_another_body(
        body in body(),
        extra in prop::collection::vec(any::<u8>(), 1..64),
        copy_trailer in any::<bool>(),
    ) {
        let mut file = entry_file(&body);
        file.extend_from_slice(&extra);
        if copy_trailer {
            // The original trailer moved to the end again: the head it points at is not there.
            let trailer = file[file.len() - extra.len() - entry::TRAILER_LEN as usize..][..entry::TRAILER_LEN as usize].to_vec();
            file.extend_from_slice(&trailer);
        }
        if let Some(decoded) = decoded_body(&file) {
            prop_assert_eq!(decoded, body);
        }
    }
}

proptest! {
    // Each case writes a file: fewer cases, the same properties through the serving path.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_disk_store_serves_the_stored_body_or_nothing(
        body in body(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        damage in 0u8..3,
        streamed in any::<bool>(),
    ) {
        let memory_max = if streamed { 0 } else { u64::MAX };
        let mut file = entry_file(&body);
        prop_assert_eq!(served_body(&file, memory_max), Some(body.clone()));
        let at = at.index(file.len());
        match damage {
            0 => file[at] ^= 1 << bit,
            1 => file.truncate(at),
            _ => file.extend_from_within(..at),
        }
        if let Some(served) = served_body(&file, memory_max) {
            prop_assert_eq!(served, body);
        }
    }
}

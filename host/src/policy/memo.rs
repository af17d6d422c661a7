//! Reusing `on-request` decisions: a module's decision is a function of what it read, so a
//! request that gives the same answers to the same reads gets the same decision without a call.
//!
//! While a module runs, the host records each read it makes of the request (`path()`,
//! `header("cookie")`, …) in order: a trace. A recorded call is then a certificate: any later
//! request that gives the same values to that trace's reads, with the same current decision,
//! makes a deterministic module read the same things and return the same decision, whatever
//! else differs. So the memo keeps the few distinct traces (shapes) a module produced and, per
//! shape, decisions keyed by the values read. This needs modules to decide only from what they
//! read (no clocks, randomness or state carried between calls); a module that does not is
//! configured with `memoize = false`. Decisions are never memoized after a failure, nor when a
//! module read every header at once (the key would be the whole request).

use std::sync::{Arc, RwLock};

use http::HeaderMap;
use quick_cache::sync::Cache as QuickCache;

use super::decision::{HeaderEdit, RequestAction, RequestDecision};
use super::view::RequestView;
use crate::sync::{read, write};

/// Distinct traces remembered per module; past this, new traces are not memoized.
const MAX_SHAPES: usize = 16;

/// One read a module made of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    Method,
    Scheme,
    Authority,
    Path,
    Query,
    /// First value of a header (lower-cased name).
    Header(String),
    /// Every value of a header.
    HeaderAll(String),
}

/// The reads of one call, in order; `None` once the module read all headers at once.
#[derive(Debug, Default, Clone)]
pub(crate) struct Trace {
    reads: Option<Vec<Read>>,
}

impl Trace {
    pub fn new() -> Self {
        Trace {
            reads: Some(Vec::new()),
        }
    }

    pub fn record(&mut self, read: Read) {
        if let Some(reads) = &mut self.reads
            && !reads.contains(&read)
        {
            reads.push(read);
        }
    }

    /// The module read every header: no key short of the whole request would do.
    pub fn record_all_headers(&mut self) {
        self.reads = None;
    }

    /// The trace of a recorded call, when that call's decision is reused.
    pub fn of_shape(shape: &[Read]) -> Self {
        Trace {
            reads: Some(shape.to_vec()),
        }
    }

    /// Adds the reads of a later call: a chain's decision depends on every module's reads.
    pub fn extend(&mut self, later: Trace) {
        match later.reads {
            Some(reads) => reads.into_iter().for_each(|read| self.record(read)),
            None => self.reads = None,
        }
    }
}

struct Memoized {
    shape: Arc<[Read]>,
    current: RequestDecision,
    /// The values the shape's reads gave, each `None` when absent.
    values: Vec<Option<Vec<Vec<u8>>>>,
    decision: RequestDecision,
}

pub(crate) struct DecisionMemo {
    shapes: RwLock<Vec<Arc<[Read]>>>,
    entries: QuickCache<u64, Arc<Memoized>>,
}

impl DecisionMemo {
    pub fn new(capacity: usize) -> Self {
        DecisionMemo {
            shapes: RwLock::new(Vec::new()),
            entries: QuickCache::new(capacity.max(1)),
        }
    }

    /// A decision recorded for a request that reads the same as `request`, given `current`,
    /// with the trace that certifies it.
    pub fn lookup(
        &self,
        request: &RequestView<'_>,
        current: &RequestDecision,
    ) -> Option<(RequestDecision, Arc<[Read]>)> {
        let current_hash = decision_hash(current)?;
        let shapes = read(&self.shapes);
        for shape in shapes.iter() {
            let key = key_hash(current_hash, shape, request);
            if let Some(entry) = self.entries.get(&key)
                && Arc::ptr_eq(&entry.shape, shape)
                && entry.current == *current
                && values_match(&entry.values, shape, request)
            {
                return Some((entry.decision.clone(), Arc::clone(&entry.shape)));
            }
        }
        None
    }

    /// Remembers the decision a call made after the reads in `trace`.
    pub fn insert(
        &self,
        trace: Trace,
        request: &RequestView<'_>,
        current: &RequestDecision,
        decision: &RequestDecision,
    ) {
        let (Some(reads), Some(current_hash)) = (trace.reads, decision_hash(current)) else {
            return;
        };
        let shape = {
            let mut shapes = write(&self.shapes);
            match shapes.iter().find(|shape| shape[..] == reads[..]) {
                Some(shape) => Arc::clone(shape),
                None if shapes.len() < MAX_SHAPES => {
                    let shape: Arc<[Read]> = reads.into();
                    shapes.push(Arc::clone(&shape));
                    shape
                }
                None => return,
            }
        };
        let key = key_hash(current_hash, &shape, request);
        let values = shape.iter().map(|read| value(read, request)).collect();
        let entry = Memoized {
            shape,
            current: current.clone(),
            values,
            decision: decision.clone(),
        };
        self.entries.insert(key, Arc::new(entry));
    }
}

/// What a read returns for a request, as the byte strings the guest would see.
fn value(read: &Read, request: &RequestView<'_>) -> Option<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    visit(read, request, |part| bytes.push(part.to_vec()));
    (!bytes.is_empty() || always_present(read)).then_some(bytes)
}

fn always_present(read: &Read) -> bool {
    matches!(
        read,
        Read::Method | Read::Scheme | Read::Authority | Read::Path
    )
}

/// Calls `each` with every byte string a read returns (none when it returns nothing).
fn visit(read: &Read, request: &RequestView<'_>, mut each: impl FnMut(&[u8])) {
    let headers: &HeaderMap = request.headers;
    match read {
        Read::Method => each(request.method.as_str().as_bytes()),
        Read::Scheme => each(request.scheme.as_bytes()),
        Read::Authority => each(request.authority.as_bytes()),
        Read::Path => each(request.path_and_query.path().as_bytes()),
        Read::Query => {
            if let Some(query) = request.path_and_query.query() {
                each(query.as_bytes());
            }
        }
        Read::Header(name) => {
            if let Some(value) = headers.get(name.as_str()) {
                each(value.as_bytes());
            }
        }
        Read::HeaderAll(name) => {
            for value in headers.get_all(name.as_str()) {
                each(value.as_bytes());
            }
        }
    }
}

fn values_match(
    values: &[Option<Vec<Vec<u8>>>],
    shape: &[Read],
    request: &RequestView<'_>,
) -> bool {
    values.iter().zip(shape).all(|(stored, read)| {
        let mut parts = stored.iter().flatten();
        let mut same = true;
        let mut seen = 0usize;
        visit(read, request, |part| {
            seen += 1;
            same &= parts.next().is_some_and(|stored| stored == part);
        });
        let stored_count = stored.as_ref().map_or(0, Vec::len);
        let present = seen > 0 || always_present(read);
        same && seen == stored_count && present == stored.is_some()
    })
}

fn key_hash(current_hash: u64, shape: &Arc<[Read]>, request: &RequestView<'_>) -> u64 {
    let mut hasher = WordHash::new();
    hasher.word(current_hash);
    hasher.word(Arc::as_ptr(shape) as *const u8 as usize as u64);
    for read in shape.iter() {
        hasher.word(u64::MAX);
        visit(read, request, |part| hasher.bytes(part));
    }
    hasher.finish()
}

/// A hash of a decision a module may be given; `None` for synthetic responses (not memoized).
fn decision_hash(decision: &RequestDecision) -> Option<u64> {
    let mut hasher = WordHash::new();
    hasher.word(match decision.action {
        RequestAction::Lookup => 0,
        RequestAction::Pass => 1,
        RequestAction::Respond(_) => return None,
    });
    hasher.bytes(decision.origin.as_bytes());
    for part in &decision.cache_key {
        hasher.bytes(part.as_bytes());
    }
    for edit in &decision.origin_header_edits {
        let (tag, name, value) = match edit {
            HeaderEdit::Set(name, value) => (1, name, value.as_bytes()),
            HeaderEdit::Append(name, value) => (2, name, value.as_bytes()),
            HeaderEdit::Remove(name) => (3, name, &[][..]),
        };
        hasher.word(tag);
        hasher.bytes(name.as_str().as_bytes());
        hasher.bytes(value);
    }
    Some(hasher.finish())
}

/// A word-at-a-time multiplicative hash: this runs on every request with policies, and a
/// collision costs only a miss (every hit is verified against the stored values).
struct WordHash(u64);

impl WordHash {
    fn new() -> Self {
        WordHash(0x9e37_79b9_7f4a_7c15)
    }

    fn word(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x2127_599b_f432_5c37)
            .rotate_left(29);
    }

    /// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn finish(&self) -> u64 {
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^ (hash >> 33)
    }
}

#[cfg(test)]
mod tests {
    use http::uri::PathAndQuery;
    use http::{HeaderValue, Method};

    use super::*;

    fn view<'a>(path: &'a PathAndQuery, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            method: &Method::GET,
            scheme: "https",
            authority: "a.test",
            path_and_query: path,
            headers,
        }
    }

    #[test]
    fn a_trace_certifies_requests_that_read_the_same() {
        let memo = DecisionMemo::new(16);
        let current = RequestDecision::default_for(&Method::GET, "web");
        let decided = RequestDecision {
            origin: "api".into(),
            ..current.clone()
        };
        let path = PathAndQuery::from_static("/api/x?id=1");
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("a=1"));
        let mut trace = Trace::new();
        trace.record(Read::Path);
        trace.record(Read::Header("cookie".into()));
        memo.insert(trace, &view(&path, &headers), &current, &decided);
        // Another query string and another unread header: same reads, same decision.
        let other_query = PathAndQuery::from_static("/api/x?id=2");
        let mut more = headers.clone();
        more.insert("user-agent", HeaderValue::from_static("curl"));
        assert_eq!(
            memo.lookup(&view(&other_query, &more), &current)
                .map(|(decision, _)| decision),
            Some(decided.clone())
        );
        // A different value for a read header, a different path, another current decision: no.
        let mut other_cookie = HeaderMap::new();
        other_cookie.insert("cookie", HeaderValue::from_static("a=2"));
        assert_eq!(
            memo.lookup(&view(&path, &other_cookie), &current)
                .map(|(decision, _)| decision),
            None
        );
        assert_eq!(
            memo.lookup(&view(&path, &HeaderMap::new()), &current)
                .map(|(decision, _)| decision),
            None
        );
        assert_eq!(
            memo.lookup(
                &view(&PathAndQuery::from_static("/api/y"), &headers),
                &current
            )
            .map(|(decision, _)| decision),
            None
        );
        let passed = RequestDecision {
            action: RequestAction::Pass,
            ..current
        };
        assert_eq!(
            memo.lookup(&view(&path, &headers), &passed)
                .map(|(decision, _)| decision),
            None
        );
    }

    #[test]
    fn absent_and_empty_values_differ() {
        let memo = DecisionMemo::new(16);
        let current = RequestDecision::default_for(&Method::GET, "web");
        let path = PathAndQuery::from_static("/");
        let mut empty = HeaderMap::new();
        empty.insert("x-flag", HeaderValue::from_static(""));
        let mut trace = Trace::new();
        trace.record(Read::Header("x-flag".into()));
        memo.insert(trace, &view(&path, &empty), &current, &current);
        assert_eq!(
            memo.lookup(&view(&path, &empty), &current)
                .map(|(decision, _)| decision),
            Some(current.clone())
        );
        assert_eq!(
            memo.lookup(&view(&path, &HeaderMap::new()), &current)
                .map(|(decision, _)| decision),
            None
        );
    }

    #[test]
    fn reading_every_header_is_never_memoized() {
        let memo = DecisionMemo::new(16);
        let current = RequestDecision::default_for(&Method::GET, "web");
        let path = PathAndQuery::from_static("/");
        let headers = HeaderMap::new();
        let mut trace = Trace::new();
        trace.record(Read::Path);
        trace.record_all_headers();
        memo.insert(trace, &view(&path, &headers), &current, &current);
        assert_eq!(
            memo.lookup(&view(&path, &headers), &current)
                .map(|(decision, _)| decision),
            None
        );
    }
}

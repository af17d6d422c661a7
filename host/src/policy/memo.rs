//! Reusing decisions of `on-request` and `on-deliver`: a module's decision is a function of
//! what it read, so a call that gives the same answers to the same reads gets the same decision
//! without entering the module.
//!
//! While a module runs, the host records each read it makes (`path()`, `header("cookie")`, the
//! client response's `status()`, …) in order: a trace. A recorded call is then a certificate:
//! any later call that gives the same values to that trace's reads, with the same current
//! decision, makes a deterministic module read the same things and return the same decision,
//! whatever else differs. So the memo keeps the few distinct traces (shapes) a module produced
//! and, per shape, decisions keyed by the values read. A hit on a stored response reads the same
//! values as the last hit on it (unless the module reads what changes per hit, like `age`), so
//! repeated hits reuse one decision. This needs modules to decide only from what they read (no
//! clocks, randomness or state carried between calls); a module that does not is configured with
//! `memoize = false`. Decisions are never memoized after a failure, nor when a module read every
//! header at once (the key would be the whole request or response).

use std::sync::{Arc, RwLock};

use http::HeaderMap;
use quick_cache::sync::Cache as QuickCache;

use super::decision::{RequestAction, RequestDecision};
use super::edits::HeaderEdit;
use super::view::{CacheOutcome, ClientResponseView, RequestView};
use crate::sync::{read, write};

/// Distinct traces remembered per module; past this, new traces are not memoized.
const MAX_SHAPES: usize = 16;

/// One read a module made of the request, or (in `on-deliver`) of the client response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    Method,
    Scheme,
    Authority,
    Path,
    Query,
    /// First value of a request header (lower-cased name).
    Header(String),
    /// Every value of a request header.
    HeaderAll(String),
    Status,
    Outcome,
    Origin,
    /// First value of a client response header (lower-cased name).
    ResponseHeader(String),
    /// Every value of a client response header.
    ResponseHeaderAll(String),
}

impl Read {
    /// Reads that always return a value (absent and empty differ for the others).
    fn always_present(&self) -> bool {
        matches!(
            self,
            Read::Method
                | Read::Scheme
                | Read::Authority
                | Read::Path
                | Read::Status
                | Read::Outcome
        )
    }

    fn of_url(&self) -> bool {
        matches!(self, Read::Path | Read::Query)
    }
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

    /// Adds the reads of a later module's call: a chain's decision depends on every module's
    /// reads. A module given a normalised URL read it from the decision before it, which the
    /// earlier reads already determine, so its path and query reads add nothing.
    pub fn extend(&mut self, later: Trace, url_was_given: bool) {
        match later.reads {
            Some(reads) => reads
                .into_iter()
                .filter(|read| !(url_was_given && read.of_url()))
                .for_each(|read| self.record(read)),
            None => self.reads = None,
        }
    }
}

/// What a memoized call was given besides the reads: its current decision.
pub(crate) trait Given: Clone + PartialEq {
    /// A hash of the value; `None` when calls given it are never memoized.
    fn memo_hash(&self) -> Option<u64>;
}

/// What a module can read in a call, as the byte strings the guest would see.
pub(crate) trait Inputs {
    /// Calls `each` with every byte string `read` returns (none when it returns nothing).
    fn visit(&self, read: &Read, each: impl FnMut(&[u8]));
}

struct Memoized<G, D> {
    shape: Arc<[Read]>,
    given: G,
    /// The values the shape's reads gave, each `None` when absent.
    values: Vec<Option<Vec<Vec<u8>>>>,
    decision: D,
}

/// Decisions of one module (or chain) for one hook, keyed by what was read and given.
pub(crate) struct DecisionMemo<G, D> {
    shapes: RwLock<Vec<Arc<[Read]>>>,
    entries: QuickCache<u64, Arc<Memoized<G, D>>>,
}

/// `on-request`: the decision given and the one returned.
pub(crate) type RequestMemo = DecisionMemo<RequestDecision, RequestDecision>;
/// `on-deliver`: nothing given beyond the reads; the edits returned.
pub(crate) type DeliverMemo = DecisionMemo<(), Vec<HeaderEdit>>;

impl<G: Given, D: Clone> DecisionMemo<G, D> {
    pub fn new(capacity: usize) -> Self {
        DecisionMemo {
            shapes: RwLock::new(Vec::new()),
            entries: QuickCache::new(capacity.max(1)),
        }
    }

    /// A decision recorded for a call that reads the same as one on `inputs`, given `given`,
    /// with the trace that certifies it.
    pub fn lookup(&self, inputs: &impl Inputs, given: &G) -> Option<(D, Arc<[Read]>)> {
        let given_hash = given.memo_hash()?;
        let shapes = read(&self.shapes);
        for shape in shapes.iter() {
            let key = key_hash(given_hash, shape, inputs);
            if let Some(entry) = self.entries.get(&key)
                && Arc::ptr_eq(&entry.shape, shape)
                && entry.given == *given
                && values_match(&entry.values, shape, inputs)
            {
                return Some((entry.decision.clone(), Arc::clone(&entry.shape)));
            }
        }
        None
    }

    /// Remembers the decision a call made after the reads in `trace`.
    pub fn insert(&self, trace: Trace, inputs: &impl Inputs, given: &G, decision: &D) {
        let (Some(reads), Some(given_hash)) = (trace.reads, given.memo_hash()) else {
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
        let key = key_hash(given_hash, &shape, inputs);
        let values = shape.iter().map(|read| value(read, inputs)).collect();
        let entry = Memoized {
            shape,
            given: given.clone(),
            values,
            decision: decision.clone(),
        };
        self.entries.insert(key, Arc::new(entry));
    }
}

impl Inputs for RequestView<'_> {
    fn visit(&self, read: &Read, mut each: impl FnMut(&[u8])) {
        match read {
            Read::Method => each(self.method.as_str().as_bytes()),
            Read::Scheme => each(self.scheme.as_bytes()),
            Read::Authority => each(self.authority.as_bytes()),
            Read::Path => each(self.path_and_query.path().as_bytes()),
            Read::Query => {
                if let Some(query) = self.path_and_query.query() {
                    each(query.as_bytes());
                }
            }
            Read::Header(name) => visit_header(self.headers, name, false, each),
            Read::HeaderAll(name) => visit_header(self.headers, name, true, each),
            // `on-request` has no response to read.
            Read::Status
            | Read::Outcome
            | Read::Origin
            | Read::ResponseHeader(_)
            | Read::ResponseHeaderAll(_) => {}
        }
    }
}

/// What `on-deliver` reads: the request and the client response.
pub(crate) struct DeliverInputs<'a> {
    pub request: &'a RequestView<'a>,
    pub response: &'a ClientResponseView<'a>,
}

impl Inputs for DeliverInputs<'_> {
    fn visit(&self, read: &Read, mut each: impl FnMut(&[u8])) {
        let response = self.response;
        match read {
            Read::Status => each(response.status.as_str().as_bytes()),
            Read::Outcome => each(&[outcome_byte(response.outcome)]),
            Read::Origin => {
                if let Some(origin) = response.origin {
                    each(origin.as_bytes());
                }
            }
            Read::ResponseHeader(name) => visit_header(response.headers, name, false, each),
            Read::ResponseHeaderAll(name) => visit_header(response.headers, name, true, each),
            request_read => self.request.visit(request_read, each),
        }
    }
}

/// Calls `each` with the first value of header `name`, or with every value when `all`.
fn visit_header(headers: &HeaderMap, name: &str, all: bool, mut each: impl FnMut(&[u8])) {
    if all {
        for value in headers.get_all(name) {
            each(value.as_bytes());
        }
    } else if let Some(value) = headers.get(name) {
        each(value.as_bytes());
    }
}

fn outcome_byte(outcome: CacheOutcome) -> u8 {
    outcome as u8
}

/// What a read returns, as the byte strings the guest would see.
fn value(read: &Read, inputs: &impl Inputs) -> Option<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    inputs.visit(read, |part| bytes.push(part.to_vec()));
    (!bytes.is_empty() || read.always_present()).then_some(bytes)
}

fn values_match(values: &[Option<Vec<Vec<u8>>>], shape: &[Read], inputs: &impl Inputs) -> bool {
    values.iter().zip(shape).all(|(stored, read)| {
        let mut parts = stored.iter().flatten();
        let mut same = true;
        let mut seen = 0usize;
        inputs.visit(read, |part| {
            seen += 1;
            same &= parts.next().is_some_and(|stored| stored == part);
        });
        let stored_count = stored.as_ref().map_or(0, Vec::len);
        let present = seen > 0 || read.always_present();
        same && seen == stored_count && present == stored.is_some()
    })
}

fn key_hash(given_hash: u64, shape: &Arc<[Read]>, inputs: &impl Inputs) -> u64 {
    let mut hasher = WordHash::new();
    hasher.word(given_hash);
    hasher.word(Arc::as_ptr(shape) as *const u8 as usize as u64);
    for read in shape.iter() {
        hasher.word(u64::MAX);
        inputs.visit(read, |part| hasher.bytes(part));
    }
    hasher.finish()
}

impl Given for RequestDecision {
    /// Synthetic responses are not memoized.
    fn memo_hash(&self) -> Option<u64> {
        let mut hasher = WordHash::new();
        hasher.word(match self.action {
            RequestAction::Lookup => 0,
            RequestAction::Pass => 1,
            RequestAction::Respond(_) => return None,
        });
        hasher.bytes(self.origin.as_bytes());
        for part in &self.cache_key {
            hasher.bytes(part.as_bytes());
        }
        for edit in &self.origin_header_edits {
            let (tag, name, value) = match edit {
                HeaderEdit::Set(name, value) => (1, name, value.as_bytes()),
                HeaderEdit::Append(name, value) => (2, name, value.as_bytes()),
                HeaderEdit::Remove(name) => (3, name, &[][..]),
            };
            hasher.word(tag);
            hasher.bytes(name.as_str().as_bytes());
            hasher.bytes(value);
        }
        match &self.url {
            Some(url) => {
                hasher.word(4);
                hasher.bytes(url.as_str().as_bytes());
            }
            None => hasher.word(5),
        }
        Some(hasher.finish())
    }
}

impl Given for () {
    fn memo_hash(&self) -> Option<u64> {
        Some(0)
    }
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
    use http::{HeaderValue, Method, StatusCode};

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

    #[test]
    fn deliver_decisions_are_keyed_by_what_was_read_of_the_response() {
        let memo = DeliverMemo::new(16);
        let path = PathAndQuery::from_static("/page");
        let request_headers = HeaderMap::new();
        let request = view(&path, &request_headers);
        let mut html = HeaderMap::new();
        html.insert("content-type", HeaderValue::from_static("text/html"));
        html.insert("age", HeaderValue::from_static("1"));
        let response = |headers, outcome| ClientResponseView {
            status: StatusCode::OK,
            outcome,
            origin: Some("web"),
            headers,
        };
        let edits = vec![HeaderEdit::Remove(http::header::SERVER)];
        let mut trace = Trace::new();
        trace.record(Read::Outcome);
        trace.record(Read::ResponseHeader("content-type".into()));
        let first = response(&html, CacheOutcome::Hit);
        let inputs = DeliverInputs {
            request: &request,
            response: &first,
        };
        memo.insert(trace, &inputs, &(), &edits);
        // The next hit on the same stored response: only `age` differs, which was not read.
        let mut older = html.clone();
        older.insert("age", HeaderValue::from_static("2"));
        let next = response(&older, CacheOutcome::Hit);
        let inputs = DeliverInputs {
            request: &request,
            response: &next,
        };
        assert_eq!(
            memo.lookup(&inputs, &()).map(|(edits, _)| edits),
            Some(edits)
        );
        // Another outcome, or another content type: decided afresh.
        let miss = response(&html, CacheOutcome::Miss);
        let inputs = DeliverInputs {
            request: &request,
            response: &miss,
        };
        assert!(memo.lookup(&inputs, &()).is_none());
        let mut css = html.clone();
        css.insert("content-type", HeaderValue::from_static("text/css"));
        let other = response(&css, CacheOutcome::Hit);
        let inputs = DeliverInputs {
            request: &request,
            response: &other,
        };
        assert!(memo.lookup(&inputs, &()).is_none());
    }

    #[test]
    fn a_chain_does_not_key_on_url_reads_made_after_a_normalisation() {
        let mut chain = Trace::new();
        chain.record(Read::Query);
        let mut later = Trace::new();
        later.record(Read::Path);
        later.record(Read::Header("cookie".into()));
        chain.extend(later.clone(), true);
        assert_eq!(
            chain.reads.as_deref(),
            Some(&[Read::Query, Read::Header("cookie".into())][..])
        );
        chain.extend(later, false);
        assert_eq!(
            chain.reads.as_deref(),
            Some(&[Read::Query, Read::Header("cookie".into()), Read::Path][..])
        );
    }
}

//! Property tests of the validation of a module's decisions: whatever names and values a module
//! returns, anything accepted is a valid header that cannot break the message caje writes (no
//! CR, LF or NUL, not hop-by-hop or framing), carried unchanged; and ordinary headers are accepted.

use proptest::prelude::*;

use super::bindings::v2::caje::policy::types as wit;
use super::decision::{RequestAction, RequestDecision};
use super::edits::{HeaderEdit, RESERVED_HEADERS};

const CASES: u32 = 2000;

/// The names caje never lets a module set (they belong to the connection or frame the body)
/// must include at least these.
#[test]
fn the_forbidden_names_cover_framing_and_the_connection() {
    for name in [
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "host",
    ] {
        assert!(RESERVED_HEADERS.contains(&name), "{name}");
    }
}

fn origins() -> Vec<String> {
    vec!["default".to_owned()]
}

/// Header names as hostile modules write them: forbidden ones in any case, tokens, and
/// anything with separators, controls or non-ASCII.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(RESERVED_HEADERS.to_vec()).prop_flat_map(|name| {
            prop::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
                name.chars()
                    .zip(upper)
                    .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect()
            })
        }),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,16}",
        "[a-z]{0,6}[ :\r\n\0\t\u{7f}\u{e9}()\",/;<=>?@\\[\\]{}][a-z]{0,6}",
        "\\PC{0,12}",
    ]
}

/// Header values as bytes: printable text, text with CR/LF/NUL and other controls, anything.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,24}".prop_map(String::into_bytes),
        "[ -~]{0,8}(\r\n|\r|\n|\0|\x01|\x7f)[ -~]{0,8}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

fn edit() -> impl Strategy<Value = wit::HeaderEdit> {
    prop_oneof![
        (name(), value()).prop_map(wit::HeaderEdit::Set),
        (name(), value()).prop_map(wit::HeaderEdit::Append),
        name().prop_map(wit::HeaderEdit::Remove),
    ]
}

fn decision(edits: Vec<wit::HeaderEdit>, synthetic: Option<wit::Headers>) -> wit::RequestDecision {
    wit::RequestDecision {
        origin: "default".to_owned(),
        action: match synthetic {
            Some(headers) => wit::RequestAction::Respond(wit::SyntheticResponse {
                status: 200,
                headers,
                body: b"synthetic".to_vec(),
            }),
            None => wit::RequestAction::Lookup,
        },
        cache_key: Vec::new(),
        origin_header_edits: edits,
        url: None,
    }
}

/// What caje could write for a header it accepted: a valid, allowed, single-line field.
fn assert_writable(name: &http::HeaderName, value: Option<&http::HeaderValue>) {
    assert!(
        !RESERVED_HEADERS.contains(&name.as_str()),
        "accepted {name}"
    );
    if let Some(value) = value {
        assert!(
            !value
                .as_bytes()
                .iter()
                .any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "accepted {name}: {value:?}"
        );
    }
}

/// The bytes of a field caje would accept: a token name that is not forbidden, a value of
/// visible ASCII, spaces and tabs (obs-text too, which RFC 9110 allows).
fn acceptable(name: &str, value: &[u8]) -> bool {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    token
        && !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
        && value
            .iter()
            .all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn accepted_edits_are_writable_and_unchanged(edits in prop::collection::vec(edit(), 1..4)) {
        let expected: Option<Vec<(String, Option<Vec<u8>>)>> = edits
            .iter()
            .map(|edit| match edit {
                wit::HeaderEdit::Set((n, v)) | wit::HeaderEdit::Append((n, v)) => {
                    acceptable(n, v).then(|| (n.to_ascii_lowercase(), Some(v.clone())))
                }
                wit::HeaderEdit::Remove(n) => {
                    acceptable(n, b"").then(|| (n.to_ascii_lowercase(), None))
                }
            })
            .collect();
        match RequestDecision::from_wit(decision(edits, None), &origins()) {
            Ok(decided) => {
                let expected = expected.expect("every edit was acceptable");
                let got: Vec<(String, Option<Vec<u8>>)> = decided
                    .origin_header_edits
                    .iter()
                    .map(|edit| match edit {
                        HeaderEdit::Set(n, v) | HeaderEdit::Append(n, v) => {
                            assert_writable(n, Some(v));
                            (n.as_str().to_owned(), Some(v.as_bytes().to_vec()))
                        }
                        HeaderEdit::Remove(n) => {
                            assert_writable(n, None);
                            (n.as_str().to_owned(), None)
                        }
                    })
                    .collect();
                prop_assert_eq!(got, expected);
            }
            Err(reason) => {
                prop_assert!(expected.is_none(), "refused acceptable edits: {}", reason);
                prop_assert!(reason.starts_with("origin-header-edits["), "{}", reason);
            }
        }
    }

    #[test]
    fn accepted_synthetic_headers_are_writable(
        fields in prop::collection::vec((name(), value()), 0..4),
    ) {
        let all_acceptable = fields.iter().all(|(n, v)| acceptable(n, v));
        match RequestDecision::from_wit(decision(Vec::new(), Some(fields)), &origins()) {
            Ok(decided) => {
                let RequestAction::Respond(response) = decided.action else {
                    panic!("a synthetic response became {:?}", decided.action);
                };
                for (name, value) in &response.headers {
                    assert_writable(name, Some(value));
                }
                prop_assert!(all_acceptable);
            }
            Err(reason) => prop_assert!(!all_acceptable, "refused acceptable fields: {}", reason),
        }
    }
}

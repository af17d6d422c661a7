//! Header edits, the one way a policy changes headers (of the origin request, the stored
//! response, the client's response, a synthetic response): validated when they cross from a
//! module, so an accepted edit can never break the message caje writes.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::bindings::v2::caje::policy::types::{self as wit, Headers};

/// The most edits in one list.
const MAX_EDITS: usize = 64;
/// The longest value an edit may set.
const MAX_VALUE_LEN: usize = 16 << 10;

/// Headers a policy may not set or remove: hop-by-hop and framing headers belong to the
/// connection, and `host` follows from the origin the policy names.
pub(super) const RESERVED_HEADERS: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "content-length",
    "host",
];

/// A validated edit of a header (never a hop-by-hop or framing header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
}

impl HeaderEdit {
    /// Applies the edit to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        match self {
            HeaderEdit::Set(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            HeaderEdit::Append(name, value) => {
                headers.append(name.clone(), value.clone());
            }
            HeaderEdit::Remove(name) => {
                headers.remove(name);
            }
        }
    }

    /// Applies `edits` to `headers`, in order.
    pub fn apply_all(edits: &[HeaderEdit], headers: &mut HeaderMap) {
        edits.iter().for_each(|edit| edit.apply(headers));
    }

    /// Validates the edits a module returned as `what` (e.g. `origin-header-edits`); the error
    /// names the list and the index of the first invalid edit.
    pub(crate) fn from_wit_list(
        what: &str,
        edits: Vec<wit::HeaderEdit>,
    ) -> Result<Vec<Self>, String> {
        if edits.len() > MAX_EDITS {
            return Err(format!(
                "{what} has {} edits (at most {MAX_EDITS})",
                edits.len()
            ));
        }
        let edits = edits.into_iter().map(|edit| match edit {
            wit::HeaderEdit::Set((name, value)) => {
                header_field(&name, &value).map(|(n, v)| HeaderEdit::Set(n, v))
            }
            wit::HeaderEdit::Append((name, value)) => {
                header_field(&name, &value).map(|(n, v)| HeaderEdit::Append(n, v))
            }
            wit::HeaderEdit::Remove(name) => header_name(&name).map(HeaderEdit::Remove),
        });
        with_index(what, edits)
    }

    /// The edits as a module is given them.
    pub(crate) fn to_wit_list(edits: &[HeaderEdit]) -> Vec<wit::HeaderEdit> {
        edits
            .iter()
            .map(|edit| match edit {
                HeaderEdit::Set(name, value) => {
                    wit::HeaderEdit::Set((name.as_str().to_owned(), value.as_bytes().to_vec()))
                }
                HeaderEdit::Append(name, value) => {
                    wit::HeaderEdit::Append((name.as_str().to_owned(), value.as_bytes().to_vec()))
                }
                HeaderEdit::Remove(name) => wit::HeaderEdit::Remove(name.as_str().to_owned()),
            })
            .collect()
    }
}

/// Header fields as WIT `headers`.
pub(crate) fn wit_headers(headers: &HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Validates the header fields of a synthetic response; the error names `what` and the index.
pub(crate) fn header_map(what: &str, fields: &Headers) -> Result<HeaderMap, String> {
    if fields.len() > MAX_EDITS {
        return Err(format!(
            "{what} has {} fields (at most {MAX_EDITS})",
            fields.len()
        ));
    }
    let fields = fields.iter().map(|(name, value)| header_field(name, value));
    Ok(with_index(what, fields)?.into_iter().collect())
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(format!(
            "{name:?} is a hop-by-hop or framing header, which policies may not edit"
        ));
    }
    Ok(parsed)
}

fn header_field(name: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), String> {
    let name = header_name(name)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(format!(
            "the value of {name:?} is {} bytes (at most {MAX_VALUE_LEN})",
            value.len()
        ));
    }
    let value = HeaderValue::from_bytes(value).map_err(|_| {
        format!("the value of {name:?} is not a valid header value (it contains CR, LF, NUL or another control byte)")
    })?;
    Ok((name, value))
}

fn with_index<T>(
    what: &str,
    results: impl Iterator<Item = Result<T, String>>,
) -> Result<Vec<T>, String> {
    results
        .enumerate()
        .map(|(index, result)| result.map_err(|reason| format!("{what}[{index}]: {reason}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(edits: Vec<wit::HeaderEdit>) -> String {
        HeaderEdit::from_wit_list("edits", edits).unwrap_err()
    }

    #[test]
    fn valid_edits_round_trip_with_lower_case_names() {
        let edits = vec![
            wit::HeaderEdit::Set(("X-Env".to_owned(), b"prod".to_vec())),
            wit::HeaderEdit::Append(("x-b".to_owned(), vec![b'2', 0xff])),
            wit::HeaderEdit::Remove("Cookie".to_owned()),
        ];
        let valid = HeaderEdit::from_wit_list("edits", edits).unwrap();
        assert_eq!(
            valid,
            [
                HeaderEdit::Set(
                    HeaderName::from_static("x-env"),
                    HeaderValue::from_static("prod")
                ),
                HeaderEdit::Append(
                    HeaderName::from_static("x-b"),
                    HeaderValue::from_bytes(&[b'2', 0xff]).unwrap()
                ),
                HeaderEdit::Remove(HeaderName::from_static("cookie")),
            ]
        );
        let back = HeaderEdit::from_wit_list("edits", HeaderEdit::to_wit_list(&valid)).unwrap();
        assert_eq!(back, valid);
    }

    #[test]
    fn reserved_and_malformed_edits_are_invalid() {
        for name in RESERVED_HEADERS {
            let error = invalid(vec![wit::HeaderEdit::Remove(name.to_uppercase())]);
            assert!(error.contains("hop-by-hop or framing header"), "{name}");
        }
        assert_eq!(
            invalid(vec![
                wit::HeaderEdit::Remove("x-ok".to_owned()),
                wit::HeaderEdit::Append(("x-injected".to_owned(), b"a\r\nb: c".to_vec())),
            ]),
            "edits[1]: the value of \"x-injected\" is not a valid header value \
             (it contains CR, LF, NUL or another control byte)"
        );
        assert_eq!(
            invalid(vec![wit::HeaderEdit::Set((
                "bad name".to_owned(),
                b"v".to_vec()
            ))]),
            "edits[0]: \"bad name\" is not a valid header name"
        );
    }

    #[test]
    fn lists_and_values_are_bounded() {
        let many = (0..=MAX_EDITS)
            .map(|_| wit::HeaderEdit::Remove("x-a".to_owned()))
            .collect();
        assert_eq!(invalid(many), "edits has 65 edits (at most 64)");
        let long = vec![wit::HeaderEdit::Set((
            "x-long".to_owned(),
            vec![b'a'; MAX_VALUE_LEN + 1],
        ))];
        assert_eq!(
            invalid(long),
            "edits[0]: the value of \"x-long\" is 16385 bytes (at most 16384)"
        );
        let fits = vec![wit::HeaderEdit::Set((
            "x-long".to_owned(),
            vec![b'a'; MAX_VALUE_LEN],
        ))];
        assert!(HeaderEdit::from_wit_list("edits", fits).is_ok());
    }

    #[test]
    fn edits_apply_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        headers.insert("x-a", HeaderValue::from_static("old"));
        HeaderEdit::apply_all(
            &[
                HeaderEdit::Set(
                    HeaderName::from_static("x-a"),
                    HeaderValue::from_static("new"),
                ),
                HeaderEdit::Append(
                    HeaderName::from_static("x-a"),
                    HeaderValue::from_static("more"),
                ),
                HeaderEdit::Remove(HeaderName::from_static("cookie")),
            ],
            &mut headers,
        );
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["new", "more"]);
        assert!(!headers.contains_key("cookie"));
    }
}

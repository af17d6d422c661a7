//! The cases file of `caje policy test --cases`: requests, optional origin answers, and what the
//! policies must make of them. A mistake in the file is an error naming the case, the key and,
//! where it can, the line.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, request, response};
use serde::Deserialize;
use toml::Spanned;

use super::super::offline::parse_request;
use super::super::view::CacheOutcome;
use crate::toml_location::locate;

/// A parsed, checked cases file.
#[derive(Debug)]
pub(crate) struct Cases {
    /// The origins the policies may name (the first is the default), when no config is given.
    pub origins: Option<Vec<String>>,
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub(crate) struct Case {
    pub name: String,
    pub request: request::Parts,
    pub origin: Option<Origin>,
    pub expect: Expect,
}

/// What the origin does with the request.
#[derive(Debug)]
pub(crate) enum Origin {
    Responds(OriginResponse),
    Fails(OriginErrorKind),
}

#[derive(Debug)]
pub(crate) struct OriginResponse {
    pub head: response::Parts,
    pub body: Bytes,
    /// How caje serves it to this request: fetched now (a miss), or stored earlier.
    pub served: Served,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Served {
    #[default]
    Miss,
    Hit,
    Stale,
    Revalidated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OriginErrorKind {
    Unreachable,
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ActionName {
    Lookup,
    Pass,
    Respond,
}

/// What a header must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderExpect {
    Absent,
    Present,
    /// Exactly these values, in order.
    Values(Vec<String>),
}

/// The expected outcome; a key left out is not checked.
#[derive(Debug, Default)]
pub(crate) struct Expect {
    pub origin: Option<String>,
    pub action: Option<ActionName>,
    pub key: Option<Vec<String>>,
    pub url: Option<String>,
    pub origin_headers: Vec<(HeaderName, HeaderExpect)>,
    pub store: Option<bool>,
    pub ttl: Option<Duration>,
    pub stale_while_revalidate: Option<Duration>,
    pub stale_if_error: Option<Duration>,
    pub tags: Option<Vec<String>>,
    pub stored_headers: Vec<(HeaderName, HeaderExpect)>,
    pub outcome: Option<CacheOutcome>,
    pub status: Option<u16>,
    pub delivered_headers: Vec<(HeaderName, HeaderExpect)>,
    pub body: Option<String>,
    pub body_contains: Option<String>,
    /// The module files expected to fail (trap, time out, decide invalidly) in this case.
    pub failures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    origins: Option<Vec<String>>,
    #[serde(default, rename = "case")]
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    request: Spanned<String>,
    #[serde(default)]
    headers: BTreeMap<String, Values>,
    response: Option<RawResponse>,
    origin_error: Option<OriginErrorKind>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, Values>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    served: Served,
}

fn ok() -> u16 {
    200
}

/// A duration written like "5m" or "250ms".
#[derive(Deserialize)]
struct Span(#[serde(deserialize_with = "crate::units::duration")] Duration);

#[derive(Deserialize)]
#[serde(untagged)]
enum RawHeaderExpect {
    Flag(bool),
    One(String),
    Many(Vec<String>),
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    origin: Option<String>,
    action: Option<ActionName>,
    key: Option<Vec<String>>,
    url: Option<String>,
    origin_headers: Option<BTreeMap<String, RawHeaderExpect>>,
    store: Option<bool>,
    ttl: Option<Span>,
    stale_while_revalidate: Option<Span>,
    stale_if_error: Option<Span>,
    tags: Option<Vec<String>>,
    stored_headers: Option<BTreeMap<String, RawHeaderExpect>>,
    outcome: Option<CacheOutcome>,
    status: Option<u16>,
    delivered_headers: Option<BTreeMap<String, RawHeaderExpect>>,
    body: Option<String>,
    body_contains: Option<String>,
    #[serde(default)]
    failures: Vec<String>,
}

/// Reads and checks the cases file at `path`; the error says what to fix.
pub(crate) fn load(path: &Path) -> anyhow::Result<Cases> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| anyhow::anyhow!("cannot read the cases file {}: {err}", path.display()))?;
    parse(&text, path).map_err(anyhow::Error::msg)
}

/// Parses cases `text`; `path` names the file in errors.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Cases, String> {
    let file = path.display();
    let raw: RawFile = toml::from_str(text).map_err(|err| {
        let message = readable(err.message());
        match err.span() {
            Some(span) => {
                let (line, key) = locate(text, span.start);
                let case = case_at(text, span.start);
                let key = key.map_or(String::new(), |key| format!("`{key}`: "));
                format!("{file}:{line}: {case}{key}{message}")
            }
            None => format!("{file}: {message}"),
        }
    })?;
    if raw.cases.is_empty() {
        return Err(format!(
            "{file}: no cases: add at least one [[case]] table with a name, a request and an [case.expect] table"
        ));
    }
    let cases = raw
        .cases
        .into_iter()
        .enumerate()
        .map(|(index, case)| {
            let label = format!("case {} {:?}", index + 1, case.name);
            check_case(case, text).map_err(|(line, key, message)| {
                let line = line.map_or(String::new(), |line| format!(":{line}"));
                format!("{file}{line}: {label}: `{key}`: {message}")
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Cases {
        origins: raw.origins,
        cases,
    })
}

/// "case N "name": " for the case whose table holds `offset`, when it can be told.
fn case_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let index = before
        .lines()
        .filter(|line| line.trim_start().starts_with("[[case]]"))
        .count();
    if index == 0 {
        return String::new();
    }
    let name = toml::from_str::<toml::Table>(text).ok().and_then(|table| {
        let cases = table.get("case")?.as_array()?.clone();
        let name = cases.get(index - 1)?.get("name")?.as_str()?.to_owned();
        Some(name)
    });
    match name {
        Some(name) => format!("case {index} {name:?}: "),
        None => format!("case {index}: "),
    }
}

fn readable(message: &str) -> String {
    let message = message.trim();
    if message.contains("untagged enum RawHeaderExpect") {
        "expected a header value (a string), a list of values, or true (present) / false (absent)"
            .to_owned()
    } else if message.contains("untagged enum Values") {
        "expected a header value (a string) or a list of values".to_owned()
    } else {
        message.to_owned()
    }
}

/// A problem in one case: its line when known, the key, the message.
type Problem = (Option<usize>, String, String);

fn check_case(case: RawCase, text: &str) -> Result<Case, Problem> {
    let line = locate(text, case.request.span().start).0;
    let headers = header_map("headers", case.headers)?;
    let request = parse_request(case.request.get_ref(), headers)
        .map_err(|err| (Some(line), "request".to_owned(), format!("{err:#}")))?;
    let origin = match (case.response, case.origin_error) {
        (Some(_), Some(_)) => {
            return Err((
                None,
                "origin_error".to_owned(),
                "a case has either a [case.response] or an origin_error, not both".to_owned(),
            ));
        }
        (Some(response), None) => Some(Origin::Responds(check_response(response)?)),
        (None, Some(kind)) => Some(Origin::Fails(kind)),
        (None, None) => None,
    };
    let expect = check_expect(case.expect)?;
    Ok(Case {
        name: case.name,
        request,
        origin,
        expect,
    })
}

fn check_response(response: RawResponse) -> Result<OriginResponse, Problem> {
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|status| (200..=599).contains(&status.as_u16()))
        .ok_or_else(|| {
            (
                None,
                "response.status".to_owned(),
                format!(
                    "{} is not a status caje can receive (200..=599)",
                    response.status
                ),
            )
        })?;
    let mut head = http::Response::new(()).into_parts().0;
    head.status = status;
    head.headers = header_map("response.headers", response.headers)?;
    Ok(OriginResponse {
        head,
        body: Bytes::from(response.body),
        served: response.served,
    })
}

fn check_expect(raw: RawExpect) -> Result<Expect, Problem> {
    Ok(Expect {
        origin: raw.origin,
        action: raw.action,
        key: raw.key,
        url: raw.url,
        origin_headers: header_expectations("expect.origin_headers", raw.origin_headers)?,
        store: raw.store,
        ttl: raw.ttl.map(|span| span.0),
        stale_while_revalidate: raw.stale_while_revalidate.map(|span| span.0),
        stale_if_error: raw.stale_if_error.map(|span| span.0),
        tags: raw.tags,
        stored_headers: header_expectations("expect.stored_headers", raw.stored_headers)?,
        outcome: raw.outcome,
        status: raw.status,
        delivered_headers: header_expectations("expect.delivered_headers", raw.delivered_headers)?,
        body: raw.body,
        body_contains: raw.body_contains,
        failures: raw.failures,
    })
}

fn header_name(table: &str, name: &str) -> Result<HeaderName, Problem> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        (
            None,
            format!("{table}.{name}"),
            "is not a valid header name".to_owned(),
        )
    })
}

fn header_map(table: &str, fields: BTreeMap<String, Values>) -> Result<HeaderMap, Problem> {
    let mut headers = HeaderMap::new();
    for (name, values) in fields {
        let parsed = header_name(table, &name)?;
        let values = match values {
            Values::One(value) => vec![value],
            Values::Many(values) => values,
        };
        for value in values {
            let value = HeaderValue::from_str(&value).map_err(|_| {
                (
                    None,
                    format!("{table}.{name}"),
                    format!("{value:?} is not a valid header value"),
                )
            })?;
            headers.append(parsed.clone(), value);
        }
    }
    Ok(headers)
}

fn header_expectations(
    table: &str,
    fields: Option<BTreeMap<String, RawHeaderExpect>>,
) -> Result<Vec<(HeaderName, HeaderExpect)>, Problem> {
    fields
        .unwrap_or_default()
        .into_iter()
        .map(|(name, expect)| {
            let expect = match expect {
                RawHeaderExpect::Flag(false) => HeaderExpect::Absent,
                RawHeaderExpect::Flag(true) => HeaderExpect::Present,
                RawHeaderExpect::One(value) => HeaderExpect::Values(vec![value]),
                RawHeaderExpect::Many(values) => HeaderExpect::Values(values),
            };
            Ok((header_name(table, &name)?, expect))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        parse(text, Path::new("cases.toml")).unwrap_err()
    }

    const GOOD: &str = r#"
origins = ["default", "api"]

[[case]]
name = "api goes to the api origin"
request = "GET https://example.com/api/users?utm_source=x"
headers = { cookie = "a=b", accept = ["text/html", "*/*"] }
[case.response]
status = 200
headers = { "cache-control" = "max-age=60" }
served = "hit"
[case.expect]
origin = "api"
action = "lookup"
url = "/api/users"
ttl = "1m"
outcome = "hit"
delivered_headers = { server = false, "x-frame-options" = "DENY", vary = ["a", "b"], etag = true }

[[case]]
name = "the origin is down"
request = "GET https://example.com/"
origin_error = "timeout"
[case.expect]
status = 503
body_contains = "Back soon"
"#;

    #[test]
    fn a_good_file_is_read_whole() {
        let cases = parse(GOOD, Path::new("cases.toml")).unwrap();
        assert_eq!(cases.origins.unwrap(), ["default", "api"]);
        let first = &cases.cases[0];
        assert_eq!(
            first.request.uri,
            "https://example.com/api/users?utm_source=x"
        );
        assert_eq!(first.request.headers.get_all("accept").iter().count(), 2);
        assert_eq!(first.request.headers["host"], "example.com");
        let Some(Origin::Responds(response)) = &first.origin else {
            panic!("{:?}", first.origin)
        };
        assert_eq!(response.served, Served::Hit);
        assert_eq!(first.expect.ttl, Some(Duration::from_secs(60)));
        assert_eq!(first.expect.outcome, Some(CacheOutcome::Hit));
        assert_eq!(
            first.expect.delivered_headers,
            [
                (HeaderName::from_static("etag"), HeaderExpect::Present),
                (HeaderName::from_static("server"), HeaderExpect::Absent),
                (
                    HeaderName::from_static("vary"),
                    HeaderExpect::Values(vec!["a".into(), "b".into()])
                ),
                (
                    HeaderName::from_static("x-frame-options"),
                    HeaderExpect::Values(vec!["DENY".into()])
                ),
            ]
        );
        assert!(matches!(
            cases.cases[1].origin,
            Some(Origin::Fails(OriginErrorKind::Timeout))
        ));
    }

    #[test]
    fn type_errors_name_the_line_the_case_and_the_key() {
        let text = GOOD.replace("ttl = \"1m\"", "ttl = \"1 parsec\"");
        let error = refusal(&text);
        assert!(
            error.starts_with(
                "cases.toml:16: case 1 \"api goes to the api origin\": `case.expect.ttl`: invalid duration \"1 parsec\""
            ),
            "{error}"
        );
        let text = GOOD.replace("status = 503", "statuss = 503");
        assert!(
            refusal(&text).starts_with(
                "cases.toml:25: case 2 \"the origin is down\": `case.expect.statuss`: unknown field `statuss`"
            ),
            "{}",
            refusal(&text)
        );
        let text = GOOD.replace("server = false", "server = 7");
        assert!(
            refusal(&text).contains("expected a header value (a string), a list of values, or true (present) / false (absent)"),
            "{}",
            refusal(&text)
        );
    }

    #[test]
    fn semantic_errors_name_the_case_and_the_key() {
        let text = GOOD.replace("GET https://example.com/api", "GET /api");
        let error = refusal(&text);
        assert!(
            error.starts_with("cases.toml:6: case 1 \"api goes to the api origin\": `request`: invalid URL \"/api/users?utm_source=x\": it must be absolute"),
            "{error}"
        );
        let text = GOOD.replace("cookie = \"a=b\"", "cookie = \"a\\nb\"");
        assert!(
            refusal(&text).contains("`headers.cookie`: \"a\\nb\" is not a valid header value"),
            "{}",
            refusal(&text)
        );
        let text = GOOD.replace(
            "origin_error = \"timeout\"",
            "origin_error = \"timeout\"\n[case.response]",
        );
        assert_eq!(
            refusal(&text),
            "cases.toml: case 2 \"the origin is down\": `origin_error`: a case has either a [case.response] or an origin_error, not both"
        );
        let text = GOOD.replace("status = 200", "status = 99");
        assert!(
            refusal(&text).contains("`response.status`: 99 is not a status caje can receive"),
            "{}",
            refusal(&text)
        );
        assert!(refusal("origins = []").contains("no cases"));
    }
}

//! A case's expectations against what the chain did: one mismatch per key that differs, each
//! with the expected and the actual value as the cases file writes them.

use std::time::Duration;

use http::HeaderMap;
use http::header::HeaderName;

use super::super::decision::RequestAction;
use super::file::{ActionName, Expect, HeaderExpect};
use super::simulate::Observed;

/// A key whose actual value differs from the expected one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub key: String,
    pub expected: String,
    pub got: String,
}

/// The mismatches of one case. `failed` are the module files that failed during the case, with
/// what went wrong.
pub(crate) fn compare(
    expect: &Expect,
    observed: &Observed,
    failed: &[(String, String)],
) -> Vec<Mismatch> {
    let mut out = Mismatches(Vec::new());
    if let Some(why) = &observed.impossible {
        out.push("response.served", "a response caje can serve", why.clone());
    }
    check_decision(expect, observed, &mut out);
    check_verdict(expect, observed, &mut out);
    check_delivery(expect, observed, &mut out);
    let expected: Vec<&str> = expect.failures.iter().map(String::as_str).collect();
    let got: Vec<&str> = failed.iter().map(|(module, _)| module.as_str()).collect();
    if expected != got {
        let got = failed
            .iter()
            .map(|(module, failure)| format!("{module} ({failure})"))
            .collect();
        out.push("failures", list(expect.failures.clone()), list(got));
    }
    out.0
}

struct Mismatches(Vec<Mismatch>);

impl Mismatches {
    fn push(&mut self, key: &str, expected: impl Into<String>, got: impl Into<String>) {
        self.0.push(Mismatch {
            key: key.to_owned(),
            expected: expected.into(),
            got: got.into(),
        });
    }

    /// Records a mismatch when `got` differs from `expected` (when one is expected).
    fn check<T: PartialEq>(
        &mut self,
        key: &str,
        expected: Option<&T>,
        got: Option<&T>,
        show: impl Fn(&T) -> String,
        missing: &str,
    ) {
        let Some(expected) = expected else { return };
        match got {
            Some(got) if got == expected => {}
            Some(got) => self.push(key, show(expected), show(got)),
            None => self.push(key, show(expected), missing),
        }
    }
}

fn list(items: Vec<String>) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        format!("[{}]", items.join(", "))
    }
}

fn quoted(items: &[String]) -> String {
    list(items.iter().map(|item| format!("{item:?}")).collect())
}

fn duration(duration: &Duration) -> String {
    humantime::format_duration(*duration).to_string()
}

fn check_decision(expect: &Expect, observed: &Observed, out: &mut Mismatches) {
    let refused = "(none: caje refused the request before deciding)";
    let decision = observed.decision.as_ref();
    out.check(
        "origin",
        expect.origin.as_ref(),
        decision.map(|decision| &decision.origin),
        |origin| origin.clone(),
        refused,
    );
    let action = decision.map(|decision| match decision.action {
        RequestAction::Lookup => ActionName::Lookup,
        RequestAction::Pass => ActionName::Pass,
        RequestAction::Respond(_) => ActionName::Respond,
    });
    out.check(
        "action",
        expect.action.as_ref(),
        action.as_ref(),
        |action| format!("{action:?}").to_lowercase(),
        refused,
    );
    out.check(
        "key",
        expect.key.as_ref(),
        decision.map(|decision| &decision.cache_key),
        |key| quoted(key),
        refused,
    );
    if let Some(expected) = &expect.url {
        // A URL written from its path compares with the path and query only.
        let got = observed.url.as_ref().map(|url| {
            if expected.starts_with('/') {
                url.find("://")
                    .and_then(|scheme| url[scheme + 3..].find('/').map(|at| scheme + 3 + at))
                    .map_or(url.clone(), |path| url[path..].to_owned())
            } else {
                url.clone()
            }
        });
        out.check("url", Some(expected), got.as_ref(), Clone::clone, refused);
    }
    check_headers(
        "origin_headers",
        &expect.origin_headers,
        observed.origin_headers.as_ref(),
        "(none: nothing was sent to the origin)",
        out,
    );
}

fn check_verdict(expect: &Expect, observed: &Observed, out: &mut Mismatches) {
    let missing =
        "(none: on-response did not run: no origin response, a pass or a synthetic response)";
    let verdict = observed.verdict.as_ref();
    out.check(
        "store",
        expect.store.as_ref(),
        verdict.map(|verdict| &verdict.store),
        bool::to_string,
        missing,
    );
    for (key, expected, got) in [
        ("ttl", &expect.ttl, verdict.map(|verdict| &verdict.ttl)),
        (
            "stale_while_revalidate",
            &expect.stale_while_revalidate,
            verdict.map(|verdict| &verdict.stale_while_revalidate),
        ),
        (
            "stale_if_error",
            &expect.stale_if_error,
            verdict.map(|verdict| &verdict.stale_if_error),
        ),
    ] {
        out.check(key, expected.as_ref(), got, duration, missing);
    }
    out.check(
        "tags",
        expect.tags.as_ref(),
        verdict.map(|verdict| &verdict.tags),
        |tags| quoted(tags),
        missing,
    );
    check_headers(
        "stored_headers",
        &expect.stored_headers,
        observed.stored_headers.as_ref(),
        "(none: the response is not stored)",
        out,
    );
}

fn check_delivery(expect: &Expect, observed: &Observed, out: &mut Mismatches) {
    let missing = "(none: nothing was delivered: the case has no [case.response] or origin_error)";
    out.check(
        "outcome",
        expect.outcome.as_ref(),
        observed.outcome.as_ref(),
        |outcome| outcome.as_str().to_owned(),
        missing,
    );
    out.check(
        "status",
        expect.status.as_ref(),
        observed.status.map(|status| status.as_u16()).as_ref(),
        u16::to_string,
        missing,
    );
    let delivered = observed.status.map(|_| &observed.delivered_headers);
    check_headers(
        "delivered_headers",
        &expect.delivered_headers,
        delivered,
        missing,
        out,
    );
    let body = observed
        .status
        .map(|_| String::from_utf8_lossy(&observed.body).into_owned());
    out.check(
        "body",
        expect.body.as_ref(),
        body.as_ref(),
        |body| format!("{body:?}"),
        missing,
    );
    if let Some(part) = &expect.body_contains
        && !body
            .as_ref()
            .is_some_and(|body| body.contains(part.as_str()))
    {
        let got = body.map_or(missing.to_owned(), |body| format!("{body:?}"));
        out.push("body_contains", format!("{part:?}"), got);
    }
}

fn check_headers(
    table: &str,
    expected: &[(HeaderName, HeaderExpect)],
    got: Option<&HeaderMap>,
    missing: &str,
    out: &mut Mismatches,
) {
    for (name, expect) in expected {
        let key = format!("{table}.{name}");
        let Some(headers) = got else {
            out.push(&key, show_expect(expect), missing);
            continue;
        };
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        let matches = match expect {
            HeaderExpect::Absent => values.is_empty(),
            HeaderExpect::Present => !values.is_empty(),
            HeaderExpect::Values(expected) => *expected == values,
        };
        if !matches {
            let got = if values.is_empty() {
                "(absent)".to_owned()
            } else {
                quoted(&values)
            };
            out.push(&key, show_expect(expect), got);
        }
    }
}

fn show_expect(expect: &HeaderExpect) -> String {
    match expect {
        HeaderExpect::Absent => "(absent)".to_owned(),
        HeaderExpect::Present => "(present)".to_owned(),
        HeaderExpect::Values(values) => quoted(values),
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method, StatusCode};

    use super::super::super::decision::RequestDecision;
    use super::super::super::view::CacheOutcome;
    use super::*;

    fn observed() -> Observed {
        let mut delivered = HeaderMap::new();
        delivered.insert("x-frame-options", HeaderValue::from_static("DENY"));
        Observed {
            decision: Some(RequestDecision::default_for(&Method::GET, "default")),
            url: Some("https://example.com/a?b=1".to_owned()),
            outcome: Some(CacheOutcome::Miss),
            status: Some(StatusCode::OK),
            delivered_headers: delivered,
            ..Observed::default()
        }
    }

    #[test]
    fn matching_expectations_give_no_mismatch() {
        let expect = Expect {
            origin: Some("default".to_owned()),
            action: Some(ActionName::Lookup),
            key: Some(Vec::new()),
            url: Some("/a?b=1".to_owned()),
            outcome: Some(CacheOutcome::Miss),
            status: Some(200),
            delivered_headers: vec![
                (HeaderName::from_static("server"), HeaderExpect::Absent),
                (
                    HeaderName::from_static("x-frame-options"),
                    HeaderExpect::Present,
                ),
            ],
            ..Expect::default()
        };
        assert_eq!(compare(&expect, &observed(), &[]), []);
        let absolute = Expect {
            url: Some("https://example.com/a?b=1".to_owned()),
            ..Expect::default()
        };
        assert_eq!(compare(&absolute, &observed(), &[]), []);
    }

    #[test]
    fn each_difference_is_one_mismatch() {
        let expect = Expect {
            origin: Some("api".to_owned()),
            url: Some("/a".to_owned()),
            store: Some(true),
            delivered_headers: vec![(
                HeaderName::from_static("x-frame-options"),
                HeaderExpect::Values(vec!["SAMEORIGIN".to_owned()]),
            )],
            ..Expect::default()
        };
        let failed = [(
            "10-loop.wasm".to_owned(),
            "on-deliver: timed out".to_owned(),
        )];
        let mismatches = compare(&expect, &observed(), &failed);
        let keys: Vec<&str> = mismatches.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "origin",
                "url",
                "store",
                "delivered_headers.x-frame-options",
                "failures"
            ]
        );
        assert_eq!(mismatches[1].expected, "/a");
        assert_eq!(mismatches[1].got, "/a?b=1");
        assert!(
            mismatches[2]
                .got
                .starts_with("(none: on-response did not run")
        );
        assert_eq!(mismatches[3].got, "[\"DENY\"]");
        assert_eq!(mismatches[4].expected, "(none)");
        assert_eq!(mismatches[4].got, "[10-loop.wasm (on-deliver: timed out)]");
    }
}

//! Modules built against `caje:policy@0.1.0`: what they are given and what they return, converted
//! to and from 0.2.0's types, which the host validates once. What 0.1.0 cannot see or say (the
//! normalised URL, stored-header edits) is carried over from the decision the module was given,
//! so an old module in a new chain neither loses nor changes it.

use super::bindings::v1::caje::policy::types as v1;
use super::bindings::v2::caje::policy::types as v2;

fn edit_to_v1(edit: &v2::HeaderEdit) -> v1::HeaderEdit {
    match edit {
        v2::HeaderEdit::Set(field) => v1::HeaderEdit::Set(field.clone()),
        v2::HeaderEdit::Append(field) => v1::HeaderEdit::Append(field.clone()),
        v2::HeaderEdit::Remove(name) => v1::HeaderEdit::Remove(name.clone()),
    }
}

fn edit_from_v1(edit: v1::HeaderEdit) -> v2::HeaderEdit {
    match edit {
        v1::HeaderEdit::Set(field) => v2::HeaderEdit::Set(field),
        v1::HeaderEdit::Append(field) => v2::HeaderEdit::Append(field),
        v1::HeaderEdit::Remove(name) => v2::HeaderEdit::Remove(name),
    }
}

pub(crate) fn decision_to_v1(decision: &v2::RequestDecision) -> v1::RequestDecision {
    v1::RequestDecision {
        origin: decision.origin.clone(),
        action: match &decision.action {
            v2::RequestAction::Lookup => v1::RequestAction::Lookup,
            v2::RequestAction::Pass => v1::RequestAction::Pass,
            v2::RequestAction::Respond(response) => {
                v1::RequestAction::Respond(v1::SyntheticResponse {
                    status: response.status,
                    headers: response.headers.clone(),
                    body: response.body.clone(),
                })
            }
        },
        cache_key: decision.cache_key.clone(),
        origin_header_edits: decision
            .origin_header_edits
            .iter()
            .map(edit_to_v1)
            .collect(),
    }
}

/// A 0.1.0 module's decision; `given` is the decision it was given.
pub(crate) fn decision_from_v1(
    decision: v1::RequestDecision,
    given: &v2::RequestDecision,
) -> v2::RequestDecision {
    v2::RequestDecision {
        origin: decision.origin,
        action: match decision.action {
            v1::RequestAction::Lookup => v2::RequestAction::Lookup,
            v1::RequestAction::Pass => v2::RequestAction::Pass,
            v1::RequestAction::Respond(response) => {
                v2::RequestAction::Respond(v2::SyntheticResponse {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                })
            }
        },
        cache_key: decision.cache_key,
        origin_header_edits: decision
            .origin_header_edits
            .into_iter()
            .map(edit_from_v1)
            .collect(),
        url: given.url.clone(),
    }
}

pub(crate) fn verdict_to_v1(verdict: &v2::CacheVerdict) -> v1::CacheVerdict {
    v1::CacheVerdict {
        store: verdict.store,
        ttl_ms: verdict.ttl_ms,
        stale_while_revalidate_ms: verdict.stale_while_revalidate_ms,
        stale_if_error_ms: verdict.stale_if_error_ms,
        tags: verdict.tags.clone(),
        keep_set_cookie: verdict.keep_set_cookie,
    }
}

/// A 0.1.0 module's verdict; `given` is the verdict it was given.
pub(crate) fn verdict_from_v1(
    verdict: v1::CacheVerdict,
    given: &v2::CacheVerdict,
) -> v2::CacheVerdict {
    v2::CacheVerdict {
        store: verdict.store,
        ttl_ms: verdict.ttl_ms,
        stale_while_revalidate_ms: verdict.stale_while_revalidate_ms,
        stale_if_error_ms: verdict.stale_if_error_ms,
        tags: verdict.tags,
        keep_set_cookie: verdict.keep_set_cookie,
        stored_header_edits: given.stored_header_edits.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> v2::RequestDecision {
        v2::RequestDecision {
            origin: "api".to_owned(),
            action: v2::RequestAction::Respond(v2::SyntheticResponse {
                status: 418,
                headers: vec![("x-a".to_owned(), b"1".to_vec())],
                body: b"tea".to_vec(),
            }),
            cache_key: vec!["k".to_owned()],
            origin_header_edits: vec![
                v2::HeaderEdit::Set(("x-s".to_owned(), b"1".to_vec())),
                v2::HeaderEdit::Append(("x-a".to_owned(), b"2".to_vec())),
                v2::HeaderEdit::Remove("cookie".to_owned()),
            ],
            url: Some(v2::PathAndQuery {
                path: "/a".to_owned(),
                query: None,
            }),
        }
    }

    #[test]
    fn a_decision_round_trips_and_keeps_what_v1_cannot_see() {
        let given = decision();
        let back = decision_from_v1(decision_to_v1(&given), &given);
        assert_eq!(back, given);
    }

    #[test]
    fn a_verdict_round_trips_and_keeps_the_stored_edits() {
        let given = v2::CacheVerdict {
            store: true,
            ttl_ms: 1,
            stale_while_revalidate_ms: 2,
            stale_if_error_ms: 3,
            tags: vec!["t".to_owned()],
            keep_set_cookie: true,
            stored_header_edits: vec![v2::HeaderEdit::Remove("set-cookie".to_owned())],
        };
        let mut old = verdict_to_v1(&given);
        old.store = false;
        let back = verdict_from_v1(old, &given);
        assert!(!back.store);
        assert_eq!(back.stored_header_edits, given.stored_header_edits);
        assert_eq!(back.tags, given.tags);
    }
}

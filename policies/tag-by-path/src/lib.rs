//! Tags every stored response with its first path segment (`path:<segment>`, `path:/` for the
//! root) and its host name (`host:<name>`), so `/_caje/purge` can drop a whole section or site.

use caje_policy::{CacheVerdict, Policy, Request, Response};

/// caje accepts tags of 1..=128 printable ASCII bytes without spaces or commas.
const MAX_TAG_LEN: usize = 128;

pub struct TagByPath;

/// `kind:value`, with bytes caje does not accept in tags replaced by `_`, cut to the length limit.
fn tag(kind: &str, value: &str) -> String {
    let mut tag = String::with_capacity(MAX_TAG_LEN.min(kind.len() + 1 + value.len()));
    tag.push_str(kind);
    tag.push(':');
    let room = MAX_TAG_LEN - tag.len();
    let safe = |c: char| {
        if c.is_ascii_graphic() && c != ',' {
            c
        } else {
            '_'
        }
    };
    tag.extend(value.chars().map(safe).take(room));
    tag
}

impl Policy for TagByPath {
    fn on_response(req: &Request, _resp: &Response, current: CacheVerdict) -> CacheVerdict {
        let section = req.first_segment().unwrap_or("/");
        current
            .with_tag(tag("path", section))
            .with_tag(tag("host", req.hostname()))
    }
}

caje_policy::export!(TagByPath);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tags(url: &str) -> Vec<String> {
        let current = CacheVerdict::new(true, Duration::from_secs(60)).with_tag("earlier");
        TagByPath::on_response(&Request::new("GET", url), &Response::new(200), current).tags
    }

    #[test]
    fn tags_by_first_segment_and_host() {
        assert_eq!(
            tags("https://shop.example:8443/products/42"),
            ["earlier", "path:products", "host:shop.example"]
        );
        assert_eq!(
            tags("https://example.com/"),
            ["earlier", "path:/", "host:example.com"]
        );
    }

    #[test]
    fn tags_are_always_valid() {
        let odd = tags("https://h/a,b\u{e9}c/d");
        assert_eq!(odd[1], "path:a_b_c");
        let long = tags(&format!("https://h/{}", "x".repeat(500)));
        assert_eq!(long[1].len(), MAX_TAG_LEN);
    }
}

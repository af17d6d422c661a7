//! URL normalisation: removes marketing and click-tracking query parameters, which change per
//! visitor but not the page, and sorts the others by name, so every spelling of one page's URL
//! is cached (and fetched) once. Paths are left alone: origins may tell `/A` from `/a`.

use caje_policy::{Policy, Request, RequestDecision};

/// Parameters removed by exact name: ad platforms' click identifiers and analytics cookies
/// copied into URLs.
pub const TRACKING_PARAMS: [&str; 13] = [
    "fbclid", "gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "_ga", "_gl",
];

/// Parameters removed by prefix: Google Analytics campaign tags (`utm_source`, `utm_medium`...).
pub const TRACKING_PREFIXES: [&str; 1] = ["utm_"];

pub struct NormalizeQuery;

impl Policy for NormalizeQuery {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        // Without a query there is nothing to normalise, and nothing else to read.
        if req.query().is_none() {
            return current;
        }
        current.normalize_url(req, |url| {
            TRACKING_PREFIXES
                .iter()
                .fold(url, |url, prefix| url.without_params_prefixed(prefix))
                .without_params(&TRACKING_PARAMS)
                .sorted_params()
        })
    }
}

caje_policy::export!(NormalizeQuery);

#[cfg(test)]
mod tests {
    use caje_policy::PathAndQuery;

    use super::*;

    fn normalized(url: &str) -> Option<String> {
        let decision =
            NormalizeQuery::on_request(&Request::new("GET", url), RequestDecision::new("default"));
        decision.url.as_ref().map(PathAndQuery::to_string)
    }

    #[test]
    fn tracking_parameters_are_dropped_and_the_rest_sorted() {
        assert_eq!(
            normalized(
                "https://shop.example/shoes?utm_source=mail&size=42&fbclid=abc&color=red&utm_medium=email"
            ),
            Some("/shoes?color=red&size=42".to_owned())
        );
        assert_eq!(
            normalized("https://shop.example/?gclid=1&_ga=2&q=boots"),
            Some("/?q=boots".to_owned())
        );
    }

    #[test]
    fn a_query_of_tracking_parameters_only_disappears() {
        assert_eq!(
            normalized("https://shop.example/shoes?utm_campaign=spring&msclkid=9"),
            Some("/shoes".to_owned())
        );
    }

    #[test]
    fn clean_urls_are_left_alone() {
        assert_eq!(normalized("https://shop.example/shoes"), None);
        assert_eq!(
            normalized("https://shop.example/shoes?color=red&size=42"),
            None
        );
        // Names are compared as written: only the listed spellings are tracking parameters.
        assert_eq!(normalized("https://shop.example/a?UTM_source=x"), None);
        assert_eq!(normalized("https://shop.example/a?utm=1"), None);
    }

    #[test]
    fn repeated_parameters_keep_their_order() {
        assert_eq!(
            normalized("https://shop.example/a?tag=z&b=1&tag=a"),
            Some("/a?b=1&tag=z&tag=a".to_owned())
        );
    }
}

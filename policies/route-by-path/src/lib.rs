//! Routes `/api/*` to the origin named `api`; every other request keeps its current origin
//! (caje's default origin, unless an earlier module chose another).

use caje_policy::{Policy, Request, RequestDecision};

pub struct RouteByPath;

impl Policy for RouteByPath {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        if req.path_is_under("/api") {
            current.with_origin("api")
        } else {
            current
        }
    }
}

caje_policy::export!(RouteByPath);

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_for(url: &str) -> String {
        RouteByPath::on_request(&Request::new("GET", url), RequestDecision::new("default")).origin
    }

    #[test]
    fn api_paths_go_to_the_api_origin() {
        assert_eq!(origin_for("https://example.com/api"), "api");
        assert_eq!(origin_for("https://example.com/api/users?id=1"), "api");
    }

    #[test]
    fn other_paths_keep_the_current_origin() {
        assert_eq!(origin_for("https://example.com/"), "default");
        assert_eq!(origin_for("https://example.com/apidocs"), "default");
        assert_eq!(origin_for("https://example.com/v1/api/users"), "default");
    }

    #[test]
    fn the_rest_of_the_decision_is_kept() {
        let current = RequestDecision::new("default").pass().with_cache_key("k");
        let decision = RouteByPath::on_request(&Request::new("POST", "https://h/api/x"), current);
        assert!(decision.is_pass());
        assert_eq!(decision.cache_key, ["k"]);
    }
}

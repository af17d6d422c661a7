//! The route table: every admin route with its method, path and access, so that tests (and the
//! README) can enumerate them; then authentication and dispatch in that order.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::auth::{Access, Refusal};
use super::reply::{self, Reply};
use super::{Admin, clear, dashboard, health, list, policies, populate, prometheus, purge};

/// Every admin path starts with this.
pub const PREFIX: &str = "/_caje";

/// One admin route.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    endpoint: Endpoint,
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    ToDashboard,
    Dashboard,
    List,
    Purge,
    ClearFs,
    ClearDb,
    Populate,
    Health,
    Metrics,
    Policies,
}

const fn entry(method: Method, path: &'static str, access: Access, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        access,
        endpoint,
    }
}

static ROUTES: [Route; 10] = [
    entry(Method::GET, "/_caje", Access::Public, Endpoint::ToDashboard),
    entry(Method::GET, "/_caje/", Access::Public, Endpoint::Dashboard),
    entry(Method::GET, "/_caje/list", Access::Token, Endpoint::List),
    entry(Method::POST, "/_caje/purge", Access::Token, Endpoint::Purge),
    entry(
        Method::POST,
        "/_caje/clear-fs",
        Access::Token,
        Endpoint::ClearFs,
    ),
    entry(
        Method::POST,
        "/_caje/clear-db",
        Access::Token,
        Endpoint::ClearDb,
    ),
    entry(
        Method::POST,
        "/_caje/populate",
        Access::Token,
        Endpoint::Populate,
    ),
    entry(
        Method::GET,
        "/_caje/health",
        Access::Token,
        Endpoint::Health,
    ),
    entry(
        Method::GET,
        "/_caje/policies",
        Access::Token,
        Endpoint::Policies,
    ),
    entry(
        Method::GET,
        "/_caje/metrics",
        Access::Token,
        Endpoint::Metrics,
    ),
];

/// Every admin route. Public routes serve only the dashboard's static page (and a redirect to
/// it): no data.
pub fn routes() -> &'static [Route] {
    &ROUTES
}

/// Whether a request path belongs to the admin API (`/_caje` and everything under `/_caje/`).
pub fn owns(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(super) async fn dispatch(
    admin: &Admin,
    request: Request<Incoming>,
    client: SocketAddr,
) -> Reply {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let same_path: Vec<&Route> = ROUTES.iter().filter(|r| r.path == path).collect();
    let found = same_path.iter().find(|r| r.method == parts.method);
    let access = found.map_or(Access::Token, |r| r.access);
    if let Err(refusal) = admin.auth.check(&parts, client, access) {
        let liveness_probe = admin.public_health
            && refusal != Refusal::TokenInQuery
            && found.is_some_and(|r| matches!(r.endpoint, Endpoint::Health));
        return if liveness_probe {
            health::liveness()
        } else {
            refusal.reply()
        };
    }
    let Some(found) = found else {
        if same_path.is_empty() {
            return reply::error(
                StatusCode::NOT_FOUND,
                &format!("no admin route {path}"),
                "see the admin API section of README.md for the routes",
            );
        }
        let allowed: Vec<&str> = same_path.iter().map(|r| r.method.as_str()).collect();
        let mut answer = reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} does not take {}", parts.method),
            &format!("use {}", allowed.join(", ")),
        );
        if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
            answer.headers_mut().insert(header::ALLOW, allow);
        }
        return answer;
    };
    match found.endpoint {
        Endpoint::ToDashboard => dashboard::redirect(),
        Endpoint::Dashboard => dashboard::page(),
        Endpoint::List => list::list(admin, parts.uri.query().unwrap_or("")).await,
        Endpoint::Purge => purge::purge(admin, body).await,
        Endpoint::ClearFs => clear::clear_fs(admin, body).await,
        Endpoint::ClearDb => clear::clear_db(admin, body).await,
        Endpoint::Populate => populate::populate(admin, body).await,
        Endpoint::Health => health::health(admin).await,
        Endpoint::Metrics => prometheus::scrape(admin),
        Endpoint::Policies => policies::policies(admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_owns_its_paths_only() {
        for path in ["/_caje", "/_caje/", "/_caje/list", "/_caje/x/y"] {
            assert!(owns(path), "{path}");
        }
        for path in ["/", "/_cajeX", "/_caj", "/x/_caje/list"] {
            assert!(!owns(path), "{path}");
        }
        assert!(routes().iter().all(|r| owns(r.path)));
    }
}

//! URL normalisation: the path and query caje keys a request on and asks the origin for, with
//! the edits operators make to them (drop tracking parameters, sort, lower-case the path).

use crate::Request;

/// The path and query of a URL, as [`RequestDecision::normalize_url`](crate::RequestDecision::normalize_url)
/// sets them. Parameters are handled as written: names are compared byte for byte and
/// percent-encoding is left untouched.
///
/// ```
/// use caje_policy::PathAndQuery;
///
/// let url = PathAndQuery::new("/Shop/Shoes", Some("utm_source=mail&size=42&fbclid=x&color=red"))
///     .without_params_prefixed("utm_")
///     .without_params(&["fbclid", "gclid"])
///     .sorted_params()
///     .lowercase_path();
/// assert_eq!(url.to_string(), "/shop/shoes?color=red&size=42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAndQuery {
    /// Starts with `/`; percent-encoded, without `?` or `#`.
    pub path: String,
    /// Without the leading `?`; `None` for no query at all.
    pub query: Option<String>,
}

impl PathAndQuery {
    /// A path and an optional query (without the `?`).
    pub fn new(path: impl Into<String>, query: Option<&str>) -> Self {
        PathAndQuery {
            path: path.into(),
            query: query.map(str::to_owned),
        }
    }

    /// The request's path and query (as the modules before this one left them).
    pub fn of(req: &Request<'_>) -> Self {
        PathAndQuery::new(req.path(), req.query())
    }

    /// The query's parameters in order, each split at its first `=` (a bare `name` has no
    /// value); empty pieces (`a=1&&b=2`) are skipped.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.pieces().map(split_param)
    }

    /// The path in lower case (ASCII letters only; percent-escapes keep their meaning).
    pub fn lowercase_path(mut self) -> Self {
        self.path.make_ascii_lowercase();
        self
    }

    /// Without the parameters called any of `names`.
    pub fn without_params(self, names: &[&str]) -> Self {
        self.retain_params(|name| !names.contains(&name))
    }

    /// Without the parameters whose name starts with `prefix` (e.g. `"utm_"`).
    pub fn without_params_prefixed(self, prefix: &str) -> Self {
        self.retain_params(|name| !name.starts_with(prefix))
    }

    /// Only the parameters called one of `names`, in their order.
    pub fn only_params(self, names: &[&str]) -> Self {
        self.retain_params(|name| names.contains(&name))
    }

    /// The parameters sorted by name; parameters of the same name keep their order (their
    /// order can mean something, e.g. `tag=b&tag=a`).
    pub fn sorted_params(self) -> Self {
        let mut pieces: Vec<&str> = self.pieces().collect();
        pieces.sort_by(|a, b| split_param(a).0.cmp(split_param(b).0));
        let query = join(pieces);
        PathAndQuery {
            path: self.path,
            query,
        }
    }

    fn retain_params(self, mut keep: impl FnMut(&str) -> bool) -> Self {
        let query = join(self.pieces().filter(|piece| keep(split_param(piece).0)));
        PathAndQuery {
            path: self.path,
            query,
        }
    }

    fn pieces(&self) -> impl Iterator<Item = &str> {
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|piece| !piece.is_empty())
    }
}

impl std::fmt::Display for PathAndQuery {
    /// `path?query`, or the path alone without a query.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.query {
            Some(query) => write!(f, "{}?{query}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

fn split_param(piece: &str) -> (&str, Option<&str>) {
    match piece.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (piece, None),
    }
}

/// The query of the kept pieces; `None` when none are left.
fn join<'a>(pieces: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let joined = pieces.into_iter().collect::<Vec<_>>().join("&");
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(query: &str) -> PathAndQuery {
        PathAndQuery::new("/p", Some(query))
    }

    #[test]
    fn params_are_split_at_the_first_equals_sign() {
        let url = url("a=1&&b&c=x=y&=v");
        let params: Vec<_> = url.params().collect();
        assert_eq!(
            params,
            [
                ("a", Some("1")),
                ("b", None),
                ("c", Some("x=y")),
                ("", Some("v"))
            ]
        );
        assert_eq!(PathAndQuery::new("/", None).params().count(), 0);
    }

    #[test]
    fn removing_by_name_and_prefix() {
        let cleaned = url("utm_source=a&id=7&UTM_x=keep&fbclid=z&utm_medium")
            .without_params_prefixed("utm_")
            .without_params(&["fbclid", "gclid"]);
        assert_eq!(cleaned.query.as_deref(), Some("id=7&UTM_x=keep"));
        let emptied = url("utm_a=1&&utm_b=2").without_params_prefixed("utm_");
        assert_eq!(emptied.query, None, "no parameter left: no query at all");
        assert_eq!(emptied.to_string(), "/p");
    }

    #[test]
    fn keeping_only_a_list() {
        let kept = url("page=2&session=abc&q=shoes&page=3").only_params(&["q", "page"]);
        assert_eq!(kept.query.as_deref(), Some("page=2&q=shoes&page=3"));
    }

    #[test]
    fn sorting_is_stable_within_a_name() {
        let sorted = url("b=2&tag=z&a=1&tag=a&&c").sorted_params();
        assert_eq!(sorted.query.as_deref(), Some("a=1&b=2&c&tag=z&tag=a"));
    }

    #[test]
    fn lower_casing_the_path_keeps_the_query() {
        let lowered = PathAndQuery::new("/Docs/%C3%A9T%c3%A9", Some("Q=A")).lowercase_path();
        assert_eq!(lowered.to_string(), "/docs/%c3%a9t%c3%a9?Q=A");
    }

    #[test]
    fn of_a_request() {
        let req = Request::new("GET", "https://h/a/b?x=1");
        assert_eq!(
            PathAndQuery::of(&req),
            PathAndQuery::new("/a/b", Some("x=1"))
        );
    }
}

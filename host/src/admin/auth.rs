//! Who may use the admin API: holders of the bearer token (from `CAJE_ADMIN_TOKEN` or
//! `[admin] token_file`, compared in constant time), or, with no token configured, loopback clients.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::header::{self, HeaderValue};
use http::{StatusCode, request};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AdminConfig;
use super::query;
use super::reply::{self, Reply};

/// The environment variable holding the admin token; it takes precedence over `token_file`.
pub const TOKEN_ENV: &str = "CAJE_ADMIN_TOKEN";

/// Query parameters that look like credentials: refused so that a token never sits in a URL
/// (URLs end up in logs, browser history and `Referer` headers).
const TOKEN_PARAMETERS: [&str; 8] = [
    "token",
    "access_token",
    "bearer",
    "auth",
    "authorization",
    "api_key",
    "apikey",
    "password",
];

/// Whether a route needs the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Static and data-free (the dashboard's page): no token, but still loopback-only when no
    /// token is configured.
    Public,
    /// Needs the bearer token (or, with none configured, a loopback client).
    Token,
}

/// The configured credential. Only the token's SHA-256 is kept, so neither `Debug` nor a
/// memory dump of this struct shows the token, and comparisons take the same time whatever
/// the presented token's length.
pub struct Auth {
    digest: Option<[u8; 32]>,
    source: Source,
}

enum Source {
    Env,
    File(PathBuf),
    Nothing,
}

/// Why the token could not be read at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "{TOKEN_ENV} is set but empty\n  hint: unset it (admin then answers loopback clients only) or set a token"
    )]
    EmptyEnv,
    #[error(
        "cannot read the admin token file {path}: {source}\n  hint: create it (readable by caje only) or remove admin.token_file"
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the admin token file {0} is empty\n  hint: write a token into it, such as the output of `openssl rand -hex 32`"
    )]
    EmptyFile(PathBuf),
    #[error(
        "the admin token from {0} has characters other than printable ASCII\n  hint: it travels in an HTTP header: use letters, digits and punctuation, such as the output of `openssl rand -hex 32`"
    )]
    Unprintable(String),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TokenInQuery,
    NotLoopback,
    Unauthenticated,
}

impl Auth {
    /// Reads the token from the environment or the configured file.
    pub fn from_config(config: &AdminConfig) -> Result<Auth, TokenError> {
        Auth::resolve(std::env::var_os(TOKEN_ENV), config.token_file.as_deref())
    }

    /// The token from `env` (the value of [`TOKEN_ENV`]) or else `file`; surrounding
    /// whitespace (a file's trailing newline) is not part of it.
    pub fn resolve(env: Option<OsString>, file: Option<&Path>) -> Result<Auth, TokenError> {
        let (text, source) = match (env, file) {
            (Some(value), _) => {
                let text = value
                    .into_string()
                    .map_err(|_| TokenError::Unprintable(TOKEN_ENV.into()))?;
                if text.trim().is_empty() {
                    return Err(TokenError::EmptyEnv);
                }
                (text, Source::Env)
            }
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
                        path: path.to_owned(),
                        source,
                    })?;
                if text.trim().is_empty() {
                    return Err(TokenError::EmptyFile(path.to_owned()));
                }
                warn_if_shared(path);
                (text, Source::File(path.to_owned()))
            }
            (None, None) => {
                return Ok(Auth {
                    digest: None,
                    source: Source::Nothing,
                });
            }
        };
        let token = text.trim();
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Unprintable(source.describe()));
        }
        Ok(Auth {
            digest: Some(Sha256::digest(token.as_bytes()).into()),
            source,
        })
    }

    /// Says at start where the token comes from, or that there is none (never the token).
    pub fn log_start(&self, served_on: &str) {
        match &self.source {
            Source::Nothing => tracing::warn!(
                "admin API on {served_on}: no token configured ({TOKEN_ENV} or admin.token_file), \
                 so it answers loopback clients only; others get 403"
            ),
            source => tracing::info!(
                "admin API on {served_on}: bearer token from {}",
                source.describe()
            ),
        }
    }

    /// Lets a request through or says why not. A token in the query string is refused first,
    /// whoever sends it; then a client without the token (or, with none configured, a client
    /// that is not on loopback).
    pub fn check(
        &self,
        parts: &request::Parts,
        client: SocketAddr,
        access: Access,
    ) -> Result<(), Refusal> {
        if self.token_in_query(parts.uri.query().unwrap_or("")) {
            return Err(Refusal::TokenInQuery);
        }
        let Some(digest) = &self.digest else {
            return if client.ip().to_canonical().is_loopback() {
                Ok(())
            } else {
                Err(Refusal::NotLoopback)
            };
        };
        if access == Access::Public {
            return Ok(());
        }
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let presented = match (values.next(), values.next()) {
            (Some(value), None) => bearer(value),
            _ => None,
        };
        match presented {
            Some(token) if self.matches(digest, token) => Ok(()),
            _ => Err(Refusal::Unauthenticated),
        }
    }

    fn matches(&self, digest: &[u8; 32], token: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(token).into();
        presented.ct_eq(digest).into()
    }

    fn token_in_query(&self, query: &str) -> bool {
        query::pairs(query).iter().any(|(name, value)| {
            TOKEN_PARAMETERS
                .iter()
                .any(|known| name.eq_ignore_ascii_case(known))
                || self
                    .digest
                    .as_ref()
                    .is_some_and(|digest| self.matches(digest, value.as_bytes()))
        })
    }
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Env => TOKEN_ENV.to_owned(),
            Source::File(path) => format!("admin.token_file {}", path.display()),
            Source::Nothing => "nowhere".to_owned(),
        }
    }
}

impl Refusal {
    /// The answer: the same 401 for a missing, malformed or wrong token (it never says which).
    pub fn reply(self) -> Reply {
        match self {
            Refusal::TokenInQuery => reply::error(
                StatusCode::BAD_REQUEST,
                "credentials in the query string are refused",
                "send the token in a header instead: Authorization: Bearer <token> (and treat a \
                 token that was put in a URL as leaked)",
            ),
            Refusal::NotLoopback => reply::error(
                StatusCode::FORBIDDEN,
                "the admin API has no token configured, so it answers loopback clients only",
                "set CAJE_ADMIN_TOKEN or [admin] token_file on the node, then send \
                 Authorization: Bearer <token>",
            ),
            Refusal::Unauthenticated => {
                let mut answer = reply::error(
                    StatusCode::UNAUTHORIZED,
                    "authentication required",
                    "send the admin token as Authorization: Bearer <token>",
                );
                answer.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"caje\""),
                );
                answer
            }
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let token = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the admin token file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, authorization: &[&str]) -> request::Parts {
        let mut builder = http::Request::get(uri);
        for value in authorization {
            builder = builder.header(header::AUTHORIZATION, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn client(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    fn with_token(token: &str) -> Auth {
        Auth::resolve(Some(token.into()), None).unwrap()
    }

    #[test]
    fn the_token_is_checked_in_constant_time_and_anything_else_is_one_refusal() {
        let auth = with_token("s3cret-token");
        let remote = client("192.0.2.7");
        let check =
            |values: &[&str]| auth.check(&parts("/_caje/list", values), remote, Access::Token);
        assert_eq!(check(&["Bearer s3cret-token"]), Ok(()));
        assert_eq!(check(&["bearer   s3cret-token "]), Ok(()));
        for wrong in [
            &[][..],
            &["Bearer s3cret-tokem"],
            &["Bearer s3cret-token-and-more"],
            &["Basic s3cret-token"],
            &["Bearer"],
            &["s3cret-token"],
            &["Bearer s3cret-token", "Bearer s3cret-token"],
        ] {
            assert_eq!(check(wrong), Err(Refusal::Unauthenticated), "{wrong:?}");
        }
        // The token is required from loopback too, except on public routes.
        let local = client("127.0.0.1");
        assert_eq!(
            auth.check(&parts("/_caje/list", &[]), local, Access::Token),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            auth.check(&parts("/_caje/", &[]), remote, Access::Public),
            Ok(())
        );
    }

    #[test]
    fn tokens_in_the_query_are_refused_by_name_or_by_value() {
        let auth = with_token("s3cret-token");
        let local = client("127.0.0.1");
        for uri in [
            "/_caje/list?token=x",
            "/_caje/list?limit=1&Access_Token=x",
            "/_caje/list?prefix=s3cret-token",
            "/_caje/list?p=s3cret%2Dtoken",
        ] {
            let refused = auth.check(&parts(uri, &["Bearer s3cret-token"]), local, Access::Token);
            assert_eq!(refused, Err(Refusal::TokenInQuery), "{uri}");
        }
    }

    #[test]
    fn without_a_token_only_loopback_is_let_in() {
        let auth = Auth::resolve(None, None).unwrap();
        let request = parts("/_caje/list", &[]);
        for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                auth.check(&request, client(ip), Access::Token),
                Ok(()),
                "{ip}"
            );
        }
        for ip in ["192.0.2.7", "10.0.0.1", "::ffff:192.0.2.7", "2001:db8::1"] {
            for access in [Access::Token, Access::Public] {
                assert_eq!(
                    auth.check(&request, client(ip), access),
                    Err(Refusal::NotLoopback),
                    "{ip}"
                );
            }
        }
    }

    #[test]
    fn token_sources_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let from_file = Auth::resolve(None, Some(&file)).unwrap();
        let remote = client("192.0.2.7");
        let ok = |auth: &Auth, token: &str| {
            auth.check(
                &parts("/", &[&format!("Bearer {token}")]),
                remote,
                Access::Token,
            )
            .is_ok()
        };
        assert!(ok(&from_file, "from-file"));
        let from_env = Auth::resolve(Some("from-env".into()), Some(&file)).unwrap();
        assert!(ok(&from_env, "from-env") && !ok(&from_env, "from-file"));

        assert!(matches!(
            Auth::resolve(Some(" ".into()), None),
            Err(TokenError::EmptyEnv)
        ));
        let missing = Auth::resolve(None, Some(&dir.path().join("nope")))
            .err()
            .unwrap();
        assert!(
            missing
                .to_string()
                .contains("cannot read the admin token file")
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            Auth::resolve(None, Some(&file)),
            Err(TokenError::EmptyFile(_))
        ));
        let spaced = Auth::resolve(Some("two words".into()), None).err().unwrap();
        assert!(spaced.to_string().contains("printable ASCII"), "{spaced}");
    }
}

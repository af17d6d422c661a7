//! Admin answers: JSON bodies, errors as `{"error": …, "hint": …}` with a real status code,
//! and JSON request bodies read with a size limit and strict field checking.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::Body;

pub type Reply = Response<Body>;

/// The largest request body an admin endpoint reads.
const BODY_LIMIT: usize = 64 << 10;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    hint: &'a str,
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|err| {
        format!("{{\"error\": \"cannot encode the answer: {err}\"}}").into_bytes()
    });
    body.push(b'\n');
    with_type(status, "application/json", Body::full(body))
}

/// An error answer; `hint` tells the caller what to do about it.
pub fn error(status: StatusCode, error: &str, hint: &str) -> Reply {
    json(status, &ErrorBody { error, hint })
}

/// An answer of any content type, never cached by anyone.
pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Reply {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Reads a JSON request body; an empty body is `T::default()`. Malformed JSON, unknown fields
/// and wrong types are a 400 naming the problem; `example` shows a valid body.
pub async fn read_json<T: DeserializeOwned + Default>(
    body: Incoming,
    example: &str,
) -> Result<T, Reply> {
    let bytes = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {BODY_LIMIT} bytes"),
                &format!("send a small JSON object such as {example}"),
            ));
        }
        Err(err) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {err}"),
                "retry the request",
            ));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|err| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {err}"),
            &format!("send a JSON object such as {example}"),
        )
    })
}

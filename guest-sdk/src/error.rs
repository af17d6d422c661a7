//! What [`Policy::on_error`](crate::Policy::on_error) is told when the origin fails.

/// An origin failure caje has no stale copy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError {
    /// The name of the configured origin that failed.
    pub origin: String,
    /// How it failed.
    pub failure: OriginFailure,
}

/// How an origin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFailure {
    /// It could not be reached (connection refused or reset, DNS, TLS), or broke off before its
    /// response head. caje's own answer is 502.
    Unreachable,
    /// It sent no response head within its read timeout. caje's own answer is 504.
    Timeout,
    /// It answered with this 5xx status. caje's own answer is that response.
    ErrorStatus(u16),
}

impl OriginError {
    /// An error of the origin named `origin`, for unit tests of a policy.
    pub fn new(origin: &str, failure: OriginFailure) -> Self {
        OriginError {
            origin: origin.to_owned(),
            failure,
        }
    }

    /// The status caje would answer with if no policy makes a response: 502, 504 or the
    /// origin's own.
    pub fn status(&self) -> u16 {
        match self.failure {
            OriginFailure::Unreachable => 502,
            OriginFailure::Timeout => 504,
            OriginFailure::ErrorStatus(status) => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_caje_would_send() {
        assert_eq!(
            OriginError::new("o", OriginFailure::Unreachable).status(),
            502
        );
        assert_eq!(OriginError::new("o", OriginFailure::Timeout).status(), 504);
        assert_eq!(
            OriginError::new("o", OriginFailure::ErrorStatus(503)).status(),
            503
        );
    }
}

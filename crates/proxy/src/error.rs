use std::fmt;

/// Which side of the proxy a failure came from, as pingora does, so that logs
/// and error responses tell the user where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client talking to the proxy.
    Downstream,
    /// The server the proxy talks to.
    Upstream,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
        })
    }
}

/// A failure while proxying one request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The upstream could not be reached (refused, unresolvable, TLS failed).
    #[error("upstream {target} unreachable: {reason}")]
    UpstreamUnreachable {
        /// `host:port` that failed.
        target: String,
        /// Root cause, flattened for the response body.
        reason: String,
    },
    /// Connecting to the upstream took longer than allowed.
    #[error("upstream {target} did not accept a connection within {secs}s")]
    UpstreamTimeout {
        /// `host:port` that failed.
        target: String,
        /// The limit.
        secs: u64,
    },
    /// The upstream accepted the request but the exchange failed.
    #[error("upstream {target} failed: {reason}")]
    UpstreamFailed {
        /// `host:port` that failed.
        target: String,
        /// Root cause.
        reason: String,
    },
    /// The request could not be proxied as sent.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl ProxyError {
    /// Media type of [`ProxyError::body`].
    pub(crate) const CONTENT_TYPE: &'static str = "text/plain; charset=utf-8";

    /// The body of the response that reports this error to the client.
    pub(crate) fn body(&self) -> String {
        format!("tapwire: {self}\n")
    }

    pub(crate) fn side(&self) -> Side {
        match self {
            ProxyError::BadRequest(_) => Side::Downstream,
            _ => Side::Upstream,
        }
    }

    /// Status sent to the client.
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            ProxyError::UpstreamUnreachable { .. } | ProxyError::UpstreamFailed { .. } => {
                http::StatusCode::BAD_GATEWAY
            }
            ProxyError::UpstreamTimeout { .. } => http::StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadRequest(_) => http::StatusCode::BAD_REQUEST,
        }
    }

    /// Short machine-readable kind, used in the `x-tapwire-error` header and
    /// as a metric label.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ProxyError::UpstreamUnreachable { .. } => "upstream-unreachable",
            ProxyError::UpstreamTimeout { .. } => "upstream-timeout",
            ProxyError::UpstreamFailed { .. } => "upstream-failed",
            ProxyError::BadRequest(_) => "bad-request",
        }
    }
}

/// Joins an error and its sources into one line: hyper's top-level messages
/// ("client error (Connect)") are useless without the cause.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

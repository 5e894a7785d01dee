//! `--mock-admin`: the accuracy of a mock responder that is still running,
//! read from its admin port's `/accuracy` after the run.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tapwire_mock::{MockAccuracy, ACCURACY_PATH};

/// How long the whole fetch may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The answer is a handful of counters; anything longer is not one.
const MAX_BODY: usize = 64 << 10;

/// `base` + `/accuracy`, or why `base` is not an admin URL (the message
/// names the flag).
pub(crate) fn accuracy_uri(base: &str) -> Result<http::Uri, String> {
    let bad = |why: &str| {
        format!(
            "--mock-admin {base:?} {why}; give the mock's admin URL, e.g. http://orders-responder.shop.svc:4146"
        )
    };
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| bad("is not an http:// URL (the admin port speaks plain HTTP)"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    format!("{}{ACCURACY_PATH}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| bad(&format!("is not a URL: {e}")))
}

/// GETs `base/accuracy`; the error says what went wrong, for the warning
/// and the report's `mock_error`.
pub(crate) async fn fetch(base: &str) -> Result<MockAccuracy, String> {
    let uri = accuracy_uri(base)?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let get = async {
        let resp = client
            .get(uri.clone())
            .await
            .map_err(|e| format!("GET {uri} failed: {}", crate::run::error_chain(&e)))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer of GET {uri} failed: {e}"))?
            .to_bytes();
        if !status.is_success() {
            let preview: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(format!(
                "GET {uri} answered {status}: {}; is this a tapwire mock's admin port?",
                preview.trim()
            ));
        }
        serde_json::from_slice::<MockAccuracy>(&body).map_err(|e| {
            format!("GET {uri} did not answer mock accuracy JSON: {e}; is this a tapwire mock's admin port?")
        })
    };
    tokio::time::timeout(TIMEOUT, get)
        .await
        .unwrap_or_else(|_| Err(format!("GET {uri} timed out after {TIMEOUT:?}")))
}

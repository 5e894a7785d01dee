//! The HTTP client object_store uses for S3, GCS and Azure: hyper with
//! rustls on ring, the stack the rest of tapwire already links.
//!
//! object_store's own connector is reqwest on aws-lc-rs; written here instead
//! so that one TLS stack (and one C-free crypto build) serves the whole
//! binary. It trusts the system roots (and `SSL_CERT_FILE`).

use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    ClientConfigKey, ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind,
    HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};

/// Time allowed to open a connection to the store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one request's response head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds [`HyperService`]s for object_store.
#[derive(Debug, Default)]
pub(crate) struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let generic = |e: &dyn std::fmt::Display| object_store::Error::Generic {
            store: "tapwire",
            source: e.to_string().into(),
        };
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        let tls = tapwire_ca::client_config(None, Vec::new()).map_err(|e| generic(&e))?;
        let https = tapwire_ca::https_connector(&tls, CONNECT_TIMEOUT);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(HttpClient::new(HyperService { client, allow_http }))
    }
}

/// One pooled hyper client.
#[derive(Debug)]
struct HyperService {
    client: Client<hyper_rustls::HttpsConnector<TcpConnector>, HttpRequestBody>,
    allow_http: bool,
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.uri().scheme_str() == Some("http") && !self.allow_http {
            return Err(HttpError::new(
                HttpErrorKind::Request,
                PlainHttp(req.uri().to_string()),
            ));
        }
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Timeout, e))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = resp.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// A plain-HTTP endpoint was used without `allow_http`.
#[derive(Debug, thiserror::Error)]
#[error("{0}: plain http is refused; set AWS_ALLOW_HTTP / GOOGLE_ALLOW_HTTP / AZURE_ALLOW_HTTP=true (or allow_http) for a local test server")]
struct PlainHttp(String);

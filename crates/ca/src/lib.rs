//! Tapwire's certificate authority: it creates and stores the local CA, mints short-lived leaf certificates for intercepted TLS, and builds the rustls configs for both sides of the proxy.
//!
//! The CA lives in a directory as `ca.crt` and `ca.key` ([`init`], [`load_or_init`]);
//! clients are made to trust it with the files from
//! [`CertificateAuthority::export_files`]. A [`LeafIssuer`] signs and caches one
//! leaf per server name and hands the proxy a ready [`rustls::ServerConfig`]
//! through [`LeafIssuer::server_config_for`]; [`client_config`] builds the
//! upstream side. Everything uses rustls's ring provider explicitly, never a
//! process-wide default.

mod authority;
mod client;
mod error;
mod leaf;
mod random;
mod server;

pub use authority::{
    init, load_or_init, CertificateAuthority, ExportedFiles, CERT_FILE, DEFAULT_COMMON_NAME,
    EXPORT_CERT_FILE, EXPORT_PKCS12_FILE, KEY_FILE, TRUSTSTORE_ALIAS,
};
pub use client::{client_config, client_config_from_roots, https_connector};
pub use error::CaError;
pub use leaf::{LeafIssuer, DEFAULT_CACHE_CAPACITY};
pub use random::hex_token as random_hex;
pub use server::LeafResolver;

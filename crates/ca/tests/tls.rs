//! Leaves verified the way real clients verify them: webpki path building and a full handshake.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use tapwire_ca::{client_config_from_roots, CertificateAuthority, LeafIssuer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn issuer() -> Arc<LeafIssuer> {
    let ca = CertificateAuthority::generate("tls test CA").expect("generate CA");
    Arc::new(LeafIssuer::new(Arc::new(ca)))
}

fn verifier(ca: &CertificateAuthority) -> Arc<WebPkiServerVerifier> {
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(ca.root_store().expect("root store")),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("build verifier")
}

fn verify(
    verifier: &WebPkiServerVerifier,
    leaf: &rustls::sign::CertifiedKey,
    name: &str,
) -> Result<(), rustls::Error> {
    let server_name = ServerName::try_from(name.to_owned()).expect("valid server name");
    verifier
        .verify_server_cert(
            &leaf.cert[0],
            &leaf.cert[1..],
            &server_name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn leaves_verify_for_their_own_name_only() {
    let issuer = issuer();
    let verifier = verifier(issuer.ca());

    let dns = issuer.issue("example.test").unwrap();
    verify(&verifier, &dns, "example.test").unwrap();
    let err = verify(&verifier, &dns, "other.test").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );

    let ip = issuer.issue("127.0.0.1").unwrap();
    verify(&verifier, &ip, "127.0.0.1").unwrap();
    assert!(verify(&verifier, &ip, "127.0.0.2").is_err());
    // An IP leaf carries no DNS SAN that a hostname could match.
    assert!(verify(&verifier, &ip, "localhost").is_err());
}

#[test]
fn leaves_from_another_ca_do_not_verify() {
    let ours = issuer();
    let theirs = issuer();
    let leaf = theirs.issue("example.test").unwrap();
    assert!(verify(&verifier(ours.ca()), &leaf, "example.test").is_err());
}

#[test]
fn loaded_ca_signs_leaves_that_verify_against_the_saved_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let created = tapwire_ca::init(tmp.path(), false).unwrap();
    let loaded = Arc::new(CertificateAuthority::load(tmp.path()).unwrap());
    let leaf = LeafIssuer::new(loaded).issue("api.example.test").unwrap();
    verify(&verifier(&created), &leaf, "api.example.test").unwrap();
}

async fn handshake(
    issuer: &Arc<LeafIssuer>,
    sni: &str,
    fallback_host: &str,
) -> (Option<Vec<u8>>, Vec<u8>) {
    let alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server_config = issuer
        .server_config_for(fallback_host, alpn.clone())
        .expect("server config");
    let roots = issuer.ca().root_store().expect("root store");
    let client_config = client_config_from_roots(roots, alpn).expect("client config");

    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server_config).accept(server_io).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(buf)
    });

    let name = ServerName::try_from(sni.to_owned()).expect("valid SNI");
    let mut tls = TlsConnector::from(client_config)
        .connect(name, client_io)
        .await
        .expect("client handshake");
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(b"ping").await.expect("client write");
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await.expect("client read");
    let received = server.await.expect("server task").expect("server side");
    assert_eq!(&received, b"ping");
    (alpn, reply)
}

#[tokio::test]
async fn handshake_with_sni_agrees_on_h2() {
    let issuer = issuer();
    let (alpn, reply) = handshake(&issuer, "api.example.test", "ignored.test").await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(reply, b"pong");
    // The SNI, not the fallback, chose the certificate.
    assert_eq!(issuer.mints(), 1);
    assert_eq!(issuer.cached_names(), 1);
    let again = issuer.issue("api.example.test").unwrap();
    assert_eq!(
        issuer.mints(),
        1,
        "leaf for the SNI was not the one minted: {again:?}"
    );
}

#[tokio::test]
async fn handshake_without_sni_uses_the_fallback_host() {
    let issuer = issuer();
    // rustls clients send no SNI for IP addresses, so the fallback must carry it.
    let (_, reply) = handshake(&issuer, "127.0.0.1", "127.0.0.1").await;
    assert_eq!(reply, b"pong");
    assert_eq!(issuer.mints(), 1);
    issuer.issue("127.0.0.1").unwrap();
    assert_eq!(issuer.mints(), 1);
}

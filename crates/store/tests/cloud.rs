//! Locations on real object-store protocol servers started here on
//! loopback, S3 (moto from PyPI) and Azure Blob (Azurite from npm): objects
//! appear whole, retried writes overwrite, listings and exchange reads work
//! under a prefix, and bad settings are reported clearly.
//!
//! GCS is not tested here: object_store talks to GCS through its XML API,
//! and gcp-storage-emulator (the GCS server PyPI has) answers its listings
//! with 501 and its uploads without the ETag object_store requires;
//! fake-gcs-server is not on PyPI. See docs/storage.md.

// Helpers here are test code too: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

use tapwire_model::{segment, Direction, Exchange, Protocol, Service, Upstream};
use tapwire_store::Location;
use tapwire_test_support::cloud::ObjectServer;

fn exchange(service: &str, path: &str) -> Exchange {
    let mut e = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: service.into(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".into(),
            port: 8080,
        },
    );
    e.request = Some(tapwire_model::Request {
        method: "GET".into(),
        path: path.into(),
        ..Default::default()
    });
    e
}

fn settings(server: &ObjectServer) -> Vec<(String, String)> {
    server
        .env
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn round_trip(server: &ObjectServer) {
    let settings = settings(server);
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let loc = Location::open_with(&server.url("captures/prod"), &settings).unwrap();
        let a: Vec<Exchange> = (0..3)
            .map(|i| exchange("orders", &format!("/a/{i}")))
            .collect();
        let b = vec![exchange("payments", "/b")];
        let key_a = "service=orders/date=2026-12-01/hour=10/batch-a.jsonl.zst";
        let key_b = "service=payments/date=2026-12-01/hour=11/batch-b.jsonl.zst";
        loc.put(&key_a.into(), segment::encode(&a).into())
            .await
            .unwrap();
        loc.put(&key_b.into(), segment::encode(&b).into())
            .await
            .unwrap();
        // A retried batch lands on the same key and replaces itself.
        loc.put(&key_a.into(), segment::encode(&a).into())
            .await
            .unwrap();

        let keys: Vec<String> = loc
            .list("")
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(keys, vec![key_a.to_owned(), key_b.to_owned()]);
        let only_orders = loc.list("service=orders").await.unwrap();
        assert_eq!(only_orders.len(), 1);
        let back = loc.read_exchanges("").await.unwrap();
        assert_eq!(back.len(), 4, "{back:?}");
        let mut want: Vec<Exchange> = a.iter().chain(&b).cloned().collect();
        want.sort_by(|x, y| x.start.cmp(&y.start).then(x.id.cmp(&y.id)));
        assert_eq!(back, want);
        assert!(loc.exists(&key_b.into()).await.unwrap());
        loc.delete(&key_b.into()).await.unwrap();
        assert!(!loc.exists(&key_b.into()).await.unwrap());

        // A location under another prefix sees nothing of this one.
        let other = Location::open_with(&server.url("captures/staging"), &settings).unwrap();
        assert!(other.list("").await.unwrap().is_empty());
    });
}

#[test]
fn s3_on_moto() {
    if !tapwire_test_support::require_python_modules(&["moto.server"]) {
        return;
    }
    round_trip(&ObjectServer::moto_s3("tapwire-test"));
}

#[test]
fn azure_on_azurite() {
    if !tapwire_test_support::cloud::require_azurite() {
        return;
    }
    round_trip(&ObjectServer::azurite("tapwire-test"));
}

#[test]
fn bad_urls_and_settings_say_what_is_wrong() {
    let e = Location::open("ftp://x/y").unwrap_err().to_string();
    assert!(e.contains("unknown storage scheme ftp://"), "{e}");
    let e = Location::open_with("s3:///prefix", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://BUCKET"), "{e}");
    let e = Location::open_with("s3://b/p", &[("aws_colour", "red")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("aws_colour"), "{e}");
}

//! Where recordings and snapshots live: a local directory, or an object
//! store named by URL, read and written through the `object_store` crate.
//!
//! A [`Location`] is a URL or path; recordings are the segment files below
//! it. A [`SnapshotStore`] keeps immutable snapshots (a manifest and the
//! selected exchanges) under `snapshots/<id>/`. Formats are specified in
//! `docs/specs/snapshot.md`.

mod http;
mod location;
mod snapshot;

pub use location::{Location, LocationError};
pub use snapshot::{
    build, Latency, Manifest, Selection, Snapshot, SnapshotError, SnapshotStore, TrafficStats,
    MANIFEST_VERSION,
};
pub use tapwire_filter::{Filter, FilterError};

//! `tapwire snapshot create|ls|show|rm`.

use std::process::ExitCode;

use comfy_table::{presets, Table};
use tapwire_store::{build, Location, Manifest, Selection, SnapshotStore, TrafficStats};

use super::{println_out, runtime};
use crate::args::SnapshotCmd;

pub(crate) fn run(cmd: SnapshotCmd) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            SnapshotCmd::Create {
                from,
                service,
                since,
                until,
                filter,
                name,
                store,
            } => {
                let source = Location::open(&from)?;
                let exchanges = source.read_exchanges("").await?;
                let selection = Selection {
                    service,
                    since,
                    until,
                    filter,
                };
                let mut snap = build(exchanges, selection, name, source.url())?;
                let snapshots = SnapshotStore::new(Location::open(&store.store)?);
                let m = snapshots.save(&mut snap).await?;
                println_out(&m.id);
                eprintln!(
                    "snapshot {} ({}) holds {} exchanges: {} inbound keys, {} outbound keys; see it with: tapwire snapshot show {}",
                    m.name,
                    &m.id,
                    m.exchanges,
                    m.inbound.len(),
                    m.outbound.len(),
                    m.name
                );
            }
            SnapshotCmd::Ls { json, store } => {
                let all = SnapshotStore::new(Location::open(&store.store)?).list().await?;
                if json {
                    for m in &all {
                        println_out(&serde_json::to_string(m)?);
                    }
                } else {
                    let mut t = Table::new();
                    t.load_preset(presets::NOTHING);
                    t.set_header(["ID", "NAME", "CREATED", "SERVICES", "EXCHANGES", "INBOUND", "OUTBOUND"]);
                    for m in &all {
                        t.add_row([
                            m.id[..13].to_owned(),
                            m.name.clone(),
                            m.created.format("%Y-%m-%d %H:%M:%S").to_string(),
                            m.services.join(","),
                            m.exchanges.to_string(),
                            m.inbound.values().map(|s| s.count).sum::<u64>().to_string(),
                            m.outbound.values().map(|s| s.count).sum::<u64>().to_string(),
                        ]);
                    }
                    println_out(&t.to_string());
                }
            }
            SnapshotCmd::Show { snapshot, json, store } => {
                let m = SnapshotStore::new(Location::open(&store.store)?).resolve(&snapshot).await?;
                if json {
                    println_out(&serde_json::to_string_pretty(&m)?);
                } else {
                    println_out(&describe(&m));
                }
            }
            SnapshotCmd::Rm { snapshot, store } => {
                let m = SnapshotStore::new(Location::open(&store.store)?).remove(&snapshot).await?;
                eprintln!("deleted snapshot {} ({})", m.name, m.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn traffic(title: &str, keys: &std::collections::BTreeMap<String, TrafficStats>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header([
        title,
        "COUNT",
        "P50",
        "P99",
        "REQ BYTES",
        "RESP BYTES",
        "STATUSES",
    ]);
    for (k, s) in keys {
        let statuses: Vec<String> = s.statuses.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        t.add_row([
            k.clone(),
            s.count.to_string(),
            format!("{:.2}ms", s.latency_us.p50 as f64 / 1e3),
            format!("{:.2}ms", s.latency_us.p99 as f64 / 1e3),
            s.request_bytes.to_string(),
            s.response_bytes.to_string(),
            statuses.join(" "),
        ]);
    }
    t.to_string()
}

fn describe(m: &Manifest) -> String {
    let mut out = format!(
        "id:        {}\nname:      {}\ncreated:   {}\nsource:    {}\nservices:  {}\nwindow:    {} .. {}\nexchanges: {} ({} bytes stored)\n",
        m.id,
        m.name,
        m.created.to_rfc3339(),
        m.source,
        m.services.join(", "),
        m.start.to_rfc3339(),
        m.end.to_rfc3339(),
        m.exchanges,
        m.bytes
    );
    if !m.selection.filter.is_empty() {
        out.push_str(&format!("filter:    {}\n", m.selection.filter));
    }
    out.push('\n');
    out.push_str(&traffic("INBOUND (tests)", &m.inbound));
    out.push_str("\n\n");
    out.push_str(&traffic("OUTBOUND (mocks)", &m.outbound));
    out
}

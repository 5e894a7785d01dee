//! `tapwire inspect`: a table of exchanges, or one exchange in full.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use comfy_table::{presets, Table};
use tapwire_model::{Body, Exchange, Headers};

use super::{println_out, read_recording};
use crate::args::InspectCmd;

/// Body bytes shown inline before the rest is elided.
const SHOW_BODY: usize = 16 * 1024;

pub(crate) fn run(cmd: InspectCmd) -> anyhow::Result<ExitCode> {
    let mut all = read_recording(&cmd.path)?;
    if let Some(d) = cmd.direction {
        let d = tapwire_model::Direction::from(d);
        all.retain(|e| e.direction == d);
    }
    if let Some(id) = &cmd.id {
        let matches: Vec<&Exchange> = all
            .iter()
            .filter(|e| e.id.to_string().starts_with(id.as_str()))
            .collect();
        return match matches.as_slice() {
            [] => bail!("no exchange with id {id} in {}", cmd.path.display()),
            [one] if cmd.json => {
                println_out(&serde_json::to_string_pretty(one)?);
                Ok(ExitCode::SUCCESS)
            }
            [one] => {
                println_out(&detail(one));
                Ok(ExitCode::SUCCESS)
            }
            many => bail!(
                "id prefix {id} matches {} exchanges; give more characters",
                many.len()
            ),
        };
    }
    if let Some(n) = cmd.limit {
        all.truncate(n);
    }
    if cmd.json {
        for e in &all {
            println_out(&serde_json::to_string(e)?);
        }
    } else {
        println_out(&table(&all));
        eprintln!(
            "{} exchanges; show one with: tapwire inspect {} <ID>",
            all.len(),
            cmd.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn size(n: u64) -> String {
    if n == 0 {
        "-".to_owned()
    } else {
        bytesize::ByteSize(n).display().iec_short().to_string()
    }
}

fn latency(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else {
        format!("{:.2}ms", us as f64 / 1e3)
    }
}

/// One line per exchange, kubectl style (no borders).
fn table(all: &[Exchange]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header([
        "ID", "TIME", "DIR", "PROTO", "METHOD", "HOST", "PATH", "STATUS", "LATENCY", "REQ", "RESP",
    ]);
    for e in all {
        let (req_size, resp_size) = e.wire_bytes();
        let (method, host, path) = match &e.request {
            Some(r) => (r.method.clone(), r.authority.clone(), r.path_and_query()),
            None => {
                let sni = e.tls.as_ref().and_then(|t| t.sni.clone());
                (
                    "-".to_owned(),
                    sni.unwrap_or_else(|| e.upstream.to_string()),
                    "-".to_owned(),
                )
            }
        };
        let status = match (&e.response, &e.error) {
            (Some(r), _) => r.status.to_string(),
            (None, Some(_)) => "error".to_owned(),
            (None, None) => "-".to_owned(),
        };
        let mut path = path;
        if path.chars().count() > 60 {
            path = path.chars().take(57).collect::<String>() + "...";
        }
        t.add_row([
            e.id.to_string()[..13].to_owned(),
            e.start.format("%H:%M:%S%.3f").to_string(),
            e.direction.to_string(),
            e.protocol.to_string(),
            method,
            host,
            path,
            status,
            latency(e.duration_us),
            size(req_size),
            size(resp_size),
        ]);
    }
    t.to_string()
}

fn headers(out: &mut String, prefix: &str, h: &Headers) {
    for (n, v) in h.iter() {
        let _ = writeln!(out, "{prefix} {n}: {v}");
    }
}

fn body(out: &mut String, b: &Body) {
    if b.is_empty() {
        return;
    }
    let note = if b.truncated {
        format!(" (captured {} of {} bytes)", b.data.len(), b.size)
    } else {
        String::new()
    };
    match b.as_text() {
        Some(text) => {
            let shown: String = text.chars().take(SHOW_BODY).collect();
            let _ = writeln!(out, "\n{shown}");
            if shown.len() < text.len() {
                let _ = writeln!(
                    out,
                    "… {} more bytes not shown; use --json for all",
                    text.len() - shown.len()
                );
            }
            if !note.is_empty() {
                let _ = writeln!(out, "[body{note}]");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "\n[binary body, {} bytes{note}; use --json for base64]",
                b.size
            );
        }
    }
}

fn detail(e: &Exchange) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "id:        {}", e.id);
    let _ = writeln!(o, "time:      {}", e.start.to_rfc3339());
    let _ = writeln!(
        o,
        "direction: {}   service: {}   protocol: {}",
        e.direction, e.service.name, e.protocol
    );
    let _ = writeln!(o, "upstream:  {}   key: {}", e.upstream, e.key());
    if let (Some(c), Some(s)) = (e.client_addr, e.server_addr) {
        let _ = writeln!(o, "client:    {c} -> {s}");
    }
    if let Some(t) = &e.tls {
        let _ = writeln!(
            o,
            "tls:       sni={} alpn={} intercepted={}",
            t.sni.as_deref().unwrap_or("-"),
            if t.alpn.is_empty() {
                "-".to_owned()
            } else {
                t.alpn.join(",")
            },
            t.intercepted
        );
    }
    let _ = writeln!(o, "latency:   {}", latency(e.duration_us));
    for (k, v) in &e.tags {
        let _ = writeln!(o, "tag:       {k}={v}");
    }
    if let Some(err) = &e.error {
        let _ = writeln!(o, "error:     {err}");
    }
    if let Some(r) = &e.request {
        let _ = writeln!(o, "\n> {} {} {}", r.method, r.url(), r.version);
        headers(&mut o, ">", &r.headers);
        body(&mut o, &r.body);
        headers(&mut o, "> (trailer)", &r.trailers);
    }
    if let Some(r) = &e.response {
        let _ = writeln!(o, "\n< {} {}", r.version, r.status);
        headers(&mut o, "<", &r.headers);
        body(&mut o, &r.body);
        headers(&mut o, "< (trailer)", &r.trailers);
    }
    if let Some(t) = &e.tcp {
        let _ = writeln!(o, "\n> client sent {} bytes", t.client_bytes.size);
        body(&mut o, &t.client_bytes);
        let _ = writeln!(o, "\n< server sent {} bytes", t.server_bytes.size);
        body(&mut o, &t.server_bytes);
    }
    o
}

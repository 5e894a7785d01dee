//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! no external assets) so it can be attached to a CI run as is.

use std::fmt::Write as _;

use crate::check::Problem;
use crate::report::{esc, show, ClusterFacts, Report};

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}
th{background:#f6f6f6}.pass{color:#137333;font-weight:bold}.fail{color:#b3261e;font-weight:bold}
.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f8f8f8;padding:.6em;overflow:auto}
.del{color:#b3261e}.add{color:#137333}.card{display:inline-block;margin:0 1.5em 1em 0}
.card b{display:block;font-size:1.6em}svg text{font-size:11px;fill:#444}tr.warn td{background:#fdecea;color:#b3261e}";

/// Renders the page.
pub(crate) fn render(r: &Report) -> String {
    let mut h = String::new();
    let verdict = if r.passed {
        "<span class=pass>PASSED</span>"
    } else {
        "<span class=fail>FAILED</span>"
    };
    let s = &r.summary;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>tapwire replay: {name}</title><style>{CSS}</style></head><body>\
<h1>Replay of {name} {verdict}</h1><p>Target <code>{target}</code>{build}, {load}, started {start}, ran {dur:.1} s.</p>\
<div class=card>pass rate<b>{rate:.1}%</b></div><div class=card>requests<b>{req}</b></div>\
<div class=card>errors<b>{err}</b></div><div class=card>p99<b>{p99:.1} ms</b></div>\
<div class=card>throughput<b>{rps:.1}/s</b></div><div class=card>late / dropped sends<b>{late} / {dropped}</b></div>{keys}",
        name = esc(&r.snapshot_name),
        target = esc(&r.target),
        build = r
            .build_tag
            .as_deref()
            .map(|t| format!(" (build <code>{}</code>)", esc(t)))
            .unwrap_or_default(),
        load = esc(&r.load),
        start = r.started.to_rfc3339(),
        dur = r.duration_s,
        rate = s.assertions.pass_rate * 100.0,
        req = s.requests,
        err = s.errors,
        p99 = s.latency_ms.p99,
        rps = s.throughput_rps,
        late = s.late_sends,
        dropped = s.dropped_sends,
        keys = if r.keys.is_empty() {
            String::new()
        } else {
            format!(
                "<p>Replayed only traffic with key {}.</p>",
                r.keys
                    .iter()
                    .map(|k| format!("<code>{}</code>", esc(k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );
    if !r.goals.is_empty() {
        h.push_str(
            "<h2>Goals</h2><table><tr><th>fail if</th><th>measured</th><th>verdict</th></tr>",
        );
        for g in &r.goals {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=num>{:.3} {}</td><td>{}</td></tr>",
                esc(&g.goal),
                g.actual,
                esc(&g.unit),
                if g.passed {
                    "<span class=pass>met</span>"
                } else {
                    "<span class=fail>missed</span>"
                }
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Latency by endpoint</h2>");
    h.push_str(&latency_chart(r));
    h.push_str("<table><tr><th>endpoint</th><th>count</th><th>failed</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>");
    for e in &r.endpoints {
        let l = &e.latency_ms;
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=num>{}</td><td class=num>{}</td><td class=num>{:.1}</td><td class=num>{:.1}</td><td class=num>{:.1}</td><td class=num>{:.1}</td><td class=num>{:.1}</td></tr>",
            esc(&e.endpoint), e.count, e.failed, l.p50, l.p90, l.p95, l.p99, l.max
        );
    }
    h.push_str("</table><p>Latencies in milliseconds.</p><h2>Throughput</h2>");
    h.push_str(&throughput_chart(r));
    if let Some(m) = &r.mock {
        let _ = write!(
            h,
            "<h2>Mock accuracy</h2><p>{:.1}% of {} dependency calls answered from the recording: {} hit, {} miss, {} passthrough, {} other.</p>",
            m.ratio() * 100.0, m.total(), m.hits, m.misses, m.passthroughs, m.other
        );
    } else if let Some(e) = &r.mock_error {
        let _ = write!(
            h,
            "<h2>Mock accuracy</h2><p class=fail>unavailable: {}</p>",
            esc(e)
        );
    }
    if let Some(c) = &r.cluster {
        cluster(&mut h, c);
    }
    let _ = write!(
        h,
        "<h2>Failed assertions ({} of {} checked)</h2>",
        s.assertions.failed, s.assertions.checked
    );
    if r.failures.is_empty() {
        h.push_str("<p class=pass>None.</p>");
    }
    for f in &r.failures {
        let _ = write!(
            h,
            "<h3><code>{}</code> <small>{} · exchange {}</small></h3><pre>",
            esc(&f.endpoint),
            esc(&f.target),
            esc(&f.exchange)
        );
        for p in &f.problems {
            match p {
                Problem::Json { diffs, total } => {
                    let _ = writeln!(h, "{total} JSON difference(s):");
                    for d in diffs {
                        let _ = writeln!(
                            h,
                            "  {}\n<span class=del>  - {}</span>\n<span class=add>  + {}</span>",
                            esc(&d.path),
                            esc(&show(&d.expected)),
                            esc(&show(&d.actual))
                        );
                    }
                }
                Problem::Text {
                    line,
                    expected,
                    actual,
                } => {
                    let _ = writeln!(
                        h,
                        "text differs at line {line}:\n<span class=del>  - {}</span>\n<span class=add>  + {}</span>",
                        esc(expected),
                        esc(actual)
                    );
                }
                other => {
                    let _ = writeln!(h, "{}", esc(&other.summary()));
                }
            }
        }
        h.push_str("</pre>");
    }
    h.push_str("</body></html>\n");
    h
}

/// The cluster's events (warnings highlighted) and log tails.
fn cluster(h: &mut String, c: &ClusterFacts) {
    let _ = write!(
        h,
        "<h2>Cluster</h2><p><code>{}</code>: {} event(s), {} warning(s).</p>",
        esc(&c.workload),
        c.events.len(),
        c.warnings()
    );
    if !c.events.is_empty() {
        h.push_str("<table><tr><th>time</th><th>type</th><th>reason</th><th>object</th><th>count</th><th>message</th></tr>");
        for e in &c.events {
            let _ = write!(
                h,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=num>{}</td><td>{}</td></tr>",
                if e.is_warning() { " class=warn" } else { "" },
                e.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
                esc(&e.kind),
                esc(&e.reason),
                esc(&e.object),
                e.count,
                esc(&e.message)
            );
        }
        h.push_str("</table>");
    }
    for l in &c.logs {
        let _ = write!(
            h,
            "<h3>Log of <code>{}</code> in pod <code>{}</code></h3>",
            esc(&l.container),
            esc(&l.pod)
        );
        if let Some(e) = &l.error {
            let _ = write!(h, "<p class=fail>cannot read the log: {}</p>", esc(e));
        }
        if !l.lines.is_empty() || l.error.is_none() {
            h.push_str("<pre>");
            for line in &l.lines {
                let _ = writeln!(h, "{}", esc(line));
            }
            h.push_str("</pre>");
        }
    }
}

fn latency_chart(r: &Report) -> String {
    let (w, row, left) = (760.0, 54.0, 260.0);
    let height = 30.0 + row * r.endpoints.len() as f64;
    let max = r
        .endpoints
        .iter()
        .map(|e| e.latency_ms.p99)
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let scale = (w - left - 80.0) / max;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" role=img aria-label=\"latency percentiles per endpoint\">"
    );
    let colors = [("p50", "#8ab4f8"), ("p95", "#4285f4"), ("p99", "#1a4fa0")];
    for (i, (name, c)) in colors.iter().enumerate() {
        let x = left + i as f64 * 70.0;
        let _ = write!(s, "<rect x=\"{x}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{c}\"/><text x=\"{}\" y=\"13\">{name}</text>", x + 14.0);
    }
    for (i, e) in r.endpoints.iter().enumerate() {
        let y = 24.0 + i as f64 * row;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 24.0,
            esc(&truncate(&e.endpoint, 40))
        );
        let l = &e.latency_ms;
        for (j, (v, (_, c))) in [l.p50, l.p95, l.p99].iter().zip(colors).enumerate() {
            let by = y + j as f64 * 15.0;
            let bw = (v * scale).max(1.0);
            let _ = write!(
                s,
                "<rect x=\"{left}\" y=\"{by}\" width=\"{bw:.1}\" height=\"13\" fill=\"{c}\"/><text x=\"{:.1}\" y=\"{}\">{v:.1} ms</text>",
                left + bw + 4.0,
                by + 11.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn throughput_chart(r: &Report) -> String {
    let (w, h, pad) = (760.0, 220.0, 40.0);
    let n = r.throughput.len().max(2) as f64;
    let max = r
        .throughput
        .iter()
        .map(|s| s.requests)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |i: f64| pad + i * (w - 2.0 * pad) / (n - 1.0);
    let y = |v: f64| h - pad - v * (h - 2.0 * pad) / max;
    let points: Vec<String> = r
        .throughput
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.second as f64), y(s.requests as f64)))
        .collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=img aria-label=\"requests per second over time\">\
<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#999\"/>\
<text x=\"2\" y=\"{t}\">{max}</text><text x=\"2\" y=\"{b}\">0</text><text x=\"{r}\" y=\"{lb}\" text-anchor=end>{secs} s</text>\
<text x=\"{pad}\" y=\"{lb}\">requests per second</text>",
        b = h - pad,
        r = w - pad,
        t = pad + 4.0,
        lb = h - pad + 16.0,
        secs = r.throughput.len(),
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#4285f4\" stroke-width=\"2\" points=\"{}\"/></svg>",
        points.join(" ")
    );
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

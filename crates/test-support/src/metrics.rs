//! Reading the admin server's Prometheus/OpenMetrics text.

use std::net::SocketAddr;

/// One scrape of `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsText(pub String);

impl MetricsText {
    /// GETs `http://admin/metrics`; panics unless it answers 200.
    pub fn scrape(admin: SocketAddr) -> Self {
        let r = crate::http::get(admin, "/metrics")
            .unwrap_or_else(|e| panic!("cannot scrape http://{admin}/metrics: {e}"));
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        Self(r.text())
    }

    /// Sum of the samples of `name` whose labels include all of `labels`;
    /// `None` when no sample matches (so a misspelt name cannot pass as 0).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                continue;
            }
            let have: Vec<(&str, &str)> = label_text
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            if labels.iter().all(|l| have.contains(l)) {
                let v: f64 = value.parse().unwrap_or(f64::NAN);
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }

    /// Like [`get`](Self::get), but panics (showing the scrape) when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.0))
    }
}

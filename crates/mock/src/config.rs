//! Settings of a running mock: listeners, TLS, passthrough, timing.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A reverse listener answering as one recorded host: `9443=payments.internal:443`.
///
/// Also accepted: `9443=https://payments.internal` (port from the scheme)
/// and `9443=http://ledger:8080`. The scheme only picks the default port and
/// the protocol used by `--passthrough`; whether the listener speaks TLS is
/// decided per connection by what the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Local port to listen on (0 picks a free one).
    pub listen_port: u16,
    /// Recorded host this listener stands in for.
    pub host: String,
    /// Recorded port.
    pub port: u16,
    /// `http` or `https` when given; else the recorded scheme is used.
    pub scheme: Option<&'static str>,
}

/// A `--map` value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid mapping {value:?}: {why}; use LOCAL_PORT=HOST:PORT such as 9443=payments.internal:443"
)]
pub struct MappingError {
    value: String,
    why: &'static str,
}

impl std::str::FromStr for Mapping {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| MappingError {
            value: s.to_owned(),
            why,
        };
        let (local, target) = s.split_once('=').ok_or_else(|| err("no `=`"))?;
        let listen_port = local
            .trim()
            .parse::<u16>()
            .map_err(|_| err("the local port is not a number"))?;
        let target = target.trim();
        let (scheme, rest) = if let Some(r) = target.strip_prefix("https://") {
            (Some("https"), r)
        } else if let Some(r) = target.strip_prefix("http://") {
            (Some("http"), r)
        } else {
            (None, target)
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| err("the port is out of range"))?,
                ),
            ),
            _ => (rest, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        let port = match (port, scheme) {
            (Some(p), _) => p,
            (None, Some("https")) => 443,
            (None, Some(_)) => 80,
            (None, None) => return Err(err("the port is missing")),
        };
        Ok(Self {
            listen_port,
            host: host.to_ascii_lowercase(),
            port,
            scheme,
        })
    }
}

/// How long to wait before sending a recorded response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Timing {
    /// Answer at once.
    #[default]
    None,
    /// As long as the real upstream took.
    Recorded,
    /// The recorded latency times this factor (`2x`, `0.5x`).
    Scaled(f64),
}

/// A `--timing` value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timing {0:?}: use none, recorded, or a factor such as 2x or 0.5x")]
pub struct TimingError(String);

impl std::str::FromStr for Timing {
    type Err = TimingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "recorded" => Ok(Self::Recorded),
            _ => {
                let f = s
                    .strip_suffix('x')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .ok_or_else(|| TimingError(s.to_owned()))?;
                Ok(Self::Scaled(f))
            }
        }
    }
}

impl Timing {
    /// The delay for a response the upstream took `recorded` to produce.
    pub fn delay(self, recorded: Duration) -> Duration {
        match self {
            Timing::None => Duration::ZERO,
            Timing::Recorded => recorded,
            // `mul_f64` panics past Duration::MAX; recorded durations are
            // data, so saturate instead (the sleep is then "forever").
            Timing::Scaled(f) => {
                Duration::try_from_secs_f64(recorded.as_secs_f64() * f).unwrap_or(Duration::MAX)
            }
        }
    }
}

/// Everything [`MockServer::start`](crate::MockServer::start) needs besides the responder.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Address every listener binds to.
    pub bind: IpAddr,
    /// Forward proxy port (absolute-form HTTP and CONNECT); `None` disables
    /// it, `Some(0)` picks a free port.
    pub forward_port: Option<u16>,
    /// Reverse listeners, one per recorded host.
    pub maps: Vec<Mapping>,
    /// Admin port (`/metrics`, `/healthz`, `/readyz`); `None` disables it.
    pub admin_port: Option<u16>,
    /// CA whose leaves terminate TLS; without it TLS clients are refused.
    pub ca: Option<Arc<tapwire_ca::CertificateAuthority>>,
    /// Forward misses to the real host instead of answering 404.
    pub passthrough: bool,
    /// Extra CAs to trust (besides the system roots) when passing through.
    pub extra_ca: Option<PathBuf>,
    /// Response delay.
    pub timing: Timing,
    /// JSON Lines file that gets one record per request.
    pub results: Option<PathBuf>,
    /// Largest request body read for matching; larger requests get 413.
    pub max_body_bytes: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            forward_port: Some(0),
            maps: Vec::new(),
            admin_port: None,
            ca: None,
            passthrough: false,
            extra_ca: None,
            timing: Timing::None,
            results: None,
            max_body_bytes: 16 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse() {
        let m: Mapping = "9443=payments.internal:443".parse().unwrap();
        assert_eq!(
            (m.listen_port, m.host.as_str(), m.port, m.scheme),
            (9443, "payments.internal", 443, None)
        );
        let m: Mapping = "9443=https://Payments.Internal".parse().unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.scheme),
            ("payments.internal", 443, Some("https"))
        );
        let m: Mapping = "1=http://[::1]:8080/".parse().unwrap();
        assert_eq!((m.host.as_str(), m.port), ("::1", 8080));
        for bad in ["9443", "x=h:1", "1=h", "1=:80", "1=h:99999"] {
            assert!(bad.parse::<Mapping>().is_err(), "{bad}");
        }
    }

    #[test]
    fn timing_parses_and_scales() {
        let d = Duration::from_millis(100);
        assert_eq!("none".parse::<Timing>().unwrap().delay(d), Duration::ZERO);
        assert_eq!("recorded".parse::<Timing>().unwrap().delay(d), d);
        assert_eq!(
            "0.5x".parse::<Timing>().unwrap().delay(d),
            Duration::from_millis(50)
        );
        assert!("fast".parse::<Timing>().is_err());
        assert!("-1x".parse::<Timing>().is_err());
    }

    #[test]
    fn huge_scaled_delays_saturate_instead_of_panicking() {
        // A recording's duration_us is data (an imported HAR can say
        // anything); a large factor on a large duration overflows Duration.
        let longest = Duration::from_micros(u64::MAX);
        let t: Timing = "1000000x".parse().unwrap();
        assert_eq!(t.delay(longest), Duration::MAX);
        let t: Timing = "1e300x".parse().unwrap();
        assert_eq!(t.delay(longest), Duration::MAX);
        assert_eq!(t.delay(Duration::ZERO), Duration::ZERO);
    }
}

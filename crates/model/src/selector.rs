//! Traffic-key selectors: which recorded traffic a mock serves or a replay
//! sends, named by [`Exchange::key`](crate::Exchange::key)
//! (`service:host:port`) or `*` for all of it.

/// Whether `s` is a selector: `*`, or `service:host:port` with a non-empty
/// service and host, a port that is a number up to 65535, and no `*` or
/// whitespace anywhere else.
///
/// The form is checked, not whether any traffic has that key.
pub fn is_selector(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((rest, port)) = s.rsplit_once(':') else {
        return false;
    };
    let Some((service, host)) = rest.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && !host.is_empty()
        && port.parse::<u16>().is_ok()
        && !s.contains('*')
        && !s.contains(char::is_whitespace)
}

/// Whether traffic with `key` is selected by `selectors`: true when there
/// are none (no selection means all), when one is `*`, or when one equals
/// `key` exactly.
pub fn selects(selectors: &[String], key: &str) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s == "*" || s == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_have_the_key_form_or_are_a_star() {
        for ok in [
            "*",
            "orders:payments.svc:8080",
            "orders:10.0.0.1:443",
            // The host of an IPv6 key keeps its colons: the port is last.
            "orders:::1:80",
        ] {
            assert!(is_selector(ok), "{ok}");
        }
        for bad in [
            "",
            "orders",
            "orders:8080",
            "orders:host:http",
            ":h:1",
            "o::1",
            "o:*:1",
            "**",
            "a:b:70000",
            "a:b:-1",
            "a b:c:1",
            "a:b:1 ",
        ] {
            assert!(!is_selector(bad), "{bad}");
        }
    }

    #[test]
    fn no_selector_or_a_star_selects_everything() {
        let key = "orders:payments.svc:8080";
        assert!(selects(&[], key));
        assert!(selects(&["*".into()], key));
        assert!(selects(
            &["other:x:1".into(), "orders:payments.svc:8080".into()],
            key
        ));
        assert!(!selects(&["other:x:1".into()], key));
        // Exact match only: no prefixes, no case folding.
        assert!(!selects(&["orders:payments.svc:80".into()], key));
        assert!(!selects(&["Orders:payments.svc:8080".into()], key));
    }
}

//! Endpoint keys: method plus a path template, so `/users/42` and
//! `/users/43` are counted together as `GET /users/{id}`.

/// `METHOD /path/{id}` for a request path (without query).
pub fn endpoint_key(method: &str, path: &str) -> String {
    format!("{} {}", method.to_ascii_uppercase(), path_template(path))
}

/// The path with segments that look like identifiers (numbers, UUIDs, long
/// hex strings) replaced by `{id}`.
pub fn path_template(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(|seg| if is_id(seg) { "{id}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let digits = seg.chars().all(|c| c.is_ascii_digit());
    let uuid = seg.len() == 36
        && seg.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let hex = seg.len() >= 16 && seg.chars().all(|c| c.is_ascii_hexdigit());
    digits || uuid || hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            endpoint_key("get", "/users/42/orders"),
            "GET /users/{id}/orders"
        );
        assert_eq!(
            path_template("/o/0193a4f2-1c2b-7d3e-8f00-123456789abc"),
            "/o/{id}"
        );
        assert_eq!(path_template("/v1/items"), "/v1/items");
        assert_eq!(path_template(""), "/");
    }
}

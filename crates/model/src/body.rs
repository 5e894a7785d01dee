use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A captured message body: the bytes kept (at most the capture limit), the
/// size the body really had on the wire, and whether the kept bytes are a
/// prefix of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// The captured bytes; a prefix of the wire body when `truncated`.
    pub data: Bytes,
    /// Length of the whole body as it crossed the proxy, in bytes.
    pub size: u64,
    /// True when `data` holds fewer bytes than `size`.
    pub truncated: bool,
}

impl Body {
    /// A complete body holding `data`.
    pub fn complete(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self {
            size: data.len() as u64,
            data,
            truncated: false,
        }
    }

    /// True when the body was empty on the wire.
    pub fn is_empty(&self) -> bool {
        self.size == 0 && self.data.is_empty()
    }

    /// The captured bytes as UTF-8, if they are valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        crate::wire_text::utf8(&self.data)
    }
}

/// Wire form: text bodies stay readable (and diffable, and redactable by the
/// DLP engine as text); anything else is base64. Written with `T = &str`
/// (the text borrowed, not copied), read with `T = String`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyRepr<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
    size: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (text, base64) = match self.as_text() {
            Some(t) => (Some(t), None),
            None => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&self.data)),
            ),
        };
        BodyRepr {
            text,
            base64,
            size: self.size,
            truncated: self.truncated,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let r = BodyRepr::<String>::deserialize(d)?;
        let data: Bytes = match (r.text, r.base64) {
            (Some(t), None) => t.into(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| D::Error::custom(format!("body.base64 is not valid base64: {e}")))?
                .into(),
            (None, None) => Bytes::new(),
            (Some(_), Some(_)) => {
                return Err(D::Error::custom("body has both `text` and `base64`"));
            }
        };
        if (data.len() as u64) > r.size {
            return Err(D::Error::custom(format!(
                "body holds {} bytes but says its size is {}",
                data.len(),
                r.size
            )));
        }
        Ok(Body {
            truncated: r.truncated || (data.len() as u64) < r.size,
            size: r.size,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        for b in [
            Body::complete("hello"),
            Body::complete(vec![0u8, 159, 146, 150]),
            Body {
                data: Bytes::from_static(b"abc"),
                size: 10,
                truncated: true,
            },
        ] {
            let j = serde_json::to_string(&b).unwrap();
            let back: Body = serde_json::from_str(&j).unwrap();
            assert_eq!(back, b, "{j}");
        }
        let j = serde_json::to_string(&Body::complete("hi")).unwrap();
        assert_eq!(j, r#"{"text":"hi","size":2}"#);
    }

    #[test]
    fn rejects_inconsistent_bodies() {
        assert!(serde_json::from_str::<Body>(r#"{"text":"abc","size":1}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"text":"a","base64":"YQ==","size":1}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"base64":"@@","size":1}"#).is_err());
    }
}

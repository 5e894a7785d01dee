use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{DnsName, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::StoresServerSessions;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use crate::{random, CaError, CertificateAuthority};

/// Default bound on how many server names [`LeafIssuer`] keeps certificates for.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

// Short-lived leaves limit the damage if one leaks from the proxy's memory.
const LEAF_LIFETIME: time::Duration = time::Duration::hours(24);
// Clients whose clock runs behind ours must still accept a leaf made just now.
const LEAF_BACKDATE: time::Duration = time::Duration::hours(1);
// Re-mint an hour before expiry so no client sees a certificate about to lapse.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(23 * 3600);
// Resumption state shared by every ServerConfig this issuer builds.
const SESSION_CACHE_SIZE: usize = 4096;

/// Mints and caches short-lived leaf certificates signed by the tapwire CA.
///
/// Leaves are ECDSA P-256, valid from one hour ago for 24 hours, with
/// extendedKeyUsage serverAuth and the chain `[leaf, ca]`. A leaf is reused
/// for the same name until an hour before it expires. The cache holds at most
/// its capacity in names and drops the oldest when full, so clients sending
/// random SNI values cannot grow it without bound.
pub struct LeafIssuer {
    ca: Arc<CertificateAuthority>,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) sessions: Arc<dyn StoresServerSessions>,
    cache: Mutex<HashMap<String, CachedLeaf>>,
    capacity: usize,
    mints: AtomicU64,
    cache_hits: AtomicU64,
    evictions: AtomicU64,
}

struct CachedLeaf {
    key: Arc<CertifiedKey>,
    fresh_until: Instant,
}

impl fmt::Debug for LeafIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafIssuer")
            .field("ca", &self.ca)
            .field("cached", &self.cached_names())
            .field("capacity", &self.capacity)
            .field("mints", &self.mints())
            .field("cache_hits", &self.cache_hits())
            .finish_non_exhaustive()
    }
}

impl LeafIssuer {
    /// An issuer for `ca` whose cache holds up to [`DEFAULT_CACHE_CAPACITY`] names.
    pub fn new(ca: Arc<CertificateAuthority>) -> Self {
        Self::with_capacity(ca, DEFAULT_CACHE_CAPACITY)
    }

    /// An issuer for `ca` whose cache holds up to `capacity` names (at least one).
    pub fn with_capacity(ca: Arc<CertificateAuthority>, capacity: usize) -> Self {
        Self {
            ca,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            sessions: rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            cache: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            mints: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The CA this issuer signs with.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// A certificate for `server_name`, from the cache or freshly minted.
    ///
    /// `server_name` is a DNS name (case and a trailing dot are ignored) or an
    /// IP literal, optionally in brackets; never with a port. IP literals get
    /// an IP SAN, anything else a DNS SAN; the CN is the name either way.
    pub fn issue(&self, server_name: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let name = LeafName::parse(server_name)?;
        if let Some(key) = self.cached(&name.key) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(key);
        }

        // Mint outside the lock: signing takes far longer than a lookup, and
        // hits for other names must not wait on it.
        let minted = self.mint(&name)?;
        self.mints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(server_name = %name.key, "minted leaf certificate");

        let now = Instant::now();
        let mut cache = self.lock();
        if let Some(existing) = cache.get(&name.key) {
            if existing.fresh_until > now {
                // A concurrent caller minted the same name first; hand out
                // theirs so every connection for a name shares one leaf.
                return Ok(Arc::clone(&existing.key));
            }
        }
        if cache.len() >= self.capacity && !cache.contains_key(&name.key) {
            let evicted = evict(&mut cache, now);
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        cache.insert(
            name.key,
            CachedLeaf {
                key: Arc::clone(&minted),
                fresh_until: now + CACHE_TTL,
            },
        );
        Ok(minted)
    }

    /// How many leaves have been minted since this issuer was created.
    pub fn mints(&self) -> u64 {
        self.mints.load(Ordering::Relaxed)
    }

    /// How many [`LeafIssuer::issue`] calls were answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// How many cached leaves were dropped to make room for new names.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// How many server names currently have a cached leaf.
    pub fn cached_names(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, CachedLeaf>> {
        // Map operations cannot leave the cache half-updated, so a panic
        // elsewhere while holding the lock is no reason to stop serving.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, key: &str) -> Option<Arc<CertifiedKey>> {
        let cache = self.lock();
        let entry = cache.get(key)?;
        (entry.fresh_until > Instant::now()).then(|| Arc::clone(&entry.key))
    }

    fn mint(&self, name: &LeafName) -> Result<Arc<CertifiedKey>, CaError> {
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
        let now = OffsetDateTime::now_utc();

        let mut params = CertificateParams::default();
        params.not_before = now - LEAF_BACKDATE;
        params.not_after = now + LEAF_LIFETIME;
        params.serial_number = Some(random::serial_number()?);
        params.subject_alt_names = vec![name.san.clone()];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.key.as_str());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;

        let cert = params
            .signed_by(&key, self.ca.issuer())
            .map_err(CaError::Generate)?;
        let chain = vec![cert.der().clone(), self.ca.cert_der().clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let certified =
            CertifiedKey::from_der(chain, key_der, &self.provider).map_err(CaError::Tls)?;
        Ok(Arc::new(certified))
    }
}

/// Drops every stale entry, or the oldest one if none is stale; returns how many went.
fn evict(cache: &mut HashMap<String, CachedLeaf>, now: Instant) -> u64 {
    let before = cache.len();
    cache.retain(|_, leaf| leaf.fresh_until > now);
    if cache.len() < before {
        return (before - cache.len()) as u64;
    }
    // Every entry lives equally long, so the earliest expiry is the oldest insert.
    let oldest = cache
        .iter()
        .min_by_key(|(_, leaf)| leaf.fresh_until)
        .map(|(name, _)| name.clone());
    match oldest {
        Some(name) => {
            cache.remove(&name);
            1
        }
        None => 0,
    }
}

/// A validated server name: its cache key and the SAN it becomes.
struct LeafName {
    key: String,
    san: SanType,
}

impl LeafName {
    fn parse(raw: &str) -> Result<Self, CaError> {
        let invalid = || CaError::InvalidServerName {
            name: raw.to_owned(),
        };
        let unbracketed = raw
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(raw);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Self {
                key: ip.to_string(),
                san: SanType::IpAddress(ip),
            });
        }
        let dns = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        DnsName::try_from(dns.as_str()).map_err(|_| invalid())?;
        let ia5 = dns.clone().try_into().map_err(|_| invalid())?;
        Ok(Self {
            key: dns,
            san: SanType::DnsName(ia5),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn ca() -> Arc<CertificateAuthority> {
        static CA: OnceLock<Arc<CertificateAuthority>> = OnceLock::new();
        Arc::clone(
            CA.get_or_init(|| Arc::new(CertificateAuthority::generate("leaf test CA").unwrap())),
        )
    }

    #[test]
    fn second_issue_is_a_cache_hit() {
        let issuer = LeafIssuer::new(ca());
        let a = issuer.issue("example.test").unwrap();
        let b = issuer.issue("EXAMPLE.test.").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(issuer.mints(), 1);
        assert_eq!(issuer.cache_hits(), 1);
        let c = issuer.issue("other.test").unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(issuer.mints(), 2);
    }

    #[test]
    fn cache_never_exceeds_capacity() {
        let issuer = LeafIssuer::with_capacity(ca(), 3);
        for i in 0..10 {
            issuer.issue(&format!("host{i}.test")).unwrap();
            assert!(issuer.cached_names() <= 3);
        }
        assert_eq!(issuer.cached_names(), 3);
        assert_eq!(issuer.mints(), 10);
        assert_eq!(issuer.evictions(), 7);
        // The newest names survive eviction.
        issuer.issue("host9.test").unwrap();
        assert_eq!(issuer.mints(), 10);
        issuer.issue("host0.test").unwrap();
        assert_eq!(issuer.mints(), 11);
    }

    #[test]
    fn stale_entries_are_reminted() {
        let issuer = LeafIssuer::new(ca());
        let first = issuer.issue("stale.test").unwrap();
        issuer.lock().get_mut("stale.test").unwrap().fresh_until = Instant::now();
        let second = issuer.issue("stale.test").unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(issuer.mints(), 2);
        assert_eq!(issuer.cached_names(), 1);
    }

    #[test]
    fn leaf_has_the_promised_shape() {
        let issuer = LeafIssuer::new(ca());
        let leaf = issuer.issue("[::1]").unwrap();
        assert_eq!(leaf.cert.len(), 2);
        assert_eq!(&leaf.cert[1], ca().cert_der());
        let (_, x509) = x509_parser::parse_x509_certificate(leaf.cert[0].as_ref()).unwrap();
        assert!(!x509.is_ca());
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let san = x509.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(
            san.general_names,
            vec![x509_parser::extensions::GeneralName::IPAddress(
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..]
            )]
        );
        let now = OffsetDateTime::now_utc();
        let nb = x509.validity().not_before.to_datetime();
        let na = x509.validity().not_after.to_datetime();
        assert!((now - nb - time::Duration::hours(1)).abs() < time::Duration::minutes(1));
        assert!((na - now - time::Duration::hours(24)).abs() < time::Duration::minutes(1));
        assert_eq!(
            x509.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "::1"
        );
    }

    #[test]
    fn rejects_names_that_are_not_hosts() {
        let issuer = LeafIssuer::new(ca());
        for bad in [
            "",
            "example.test:443",
            "a b.test",
            "*.test",
            "exa\u{e9}mple.test",
        ] {
            let err = issuer.issue(bad).unwrap_err();
            assert!(
                matches!(err, CaError::InvalidServerName { .. }),
                "{bad:?}: {err:?}"
            );
        }
        assert_eq!(issuer.mints(), 0);
    }
}

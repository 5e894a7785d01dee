use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using the tapwire CA.
///
/// Messages name the file involved and, where the operator can fix it, the
/// command that does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A CA file is absent.
    #[error("no CA file at {}; run `tapwire ca init` to create a CA", path.display())]
    Missing {
        /// The file that was looked for.
        path: PathBuf,
    },

    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// A file or directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory that failed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// `init` found a CA it would overwrite.
    #[error(
        "a CA already exists in {}; pass --force to replace it (clients that trust the old CA will stop trusting tapwire)",
        dir.display()
    )]
    AlreadyExists {
        /// The CA directory.
        dir: PathBuf,
    },

    /// A CA file exists but cannot serve as tapwire's CA.
    #[error("invalid CA file {}: {reason}; run `tapwire ca init --force` to replace the CA", path.display())]
    InvalidCaFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Certificate or key generation failed.
    #[error("certificate generation failed")]
    Generate(#[source] rcgen::Error),

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,

    /// A leaf was requested for something that is neither a DNS name nor an IP address.
    #[error("cannot issue a certificate for {name:?}: not a valid DNS name or IP address")]
    InvalidServerName {
        /// The rejected name, as given.
        name: String,
    },

    /// rustls rejected a key, certificate or configuration.
    #[error("tls configuration failed")]
    Tls(#[source] rustls::Error),

    /// The PKCS#12 truststore could not be encoded.
    #[error("cannot build the PKCS#12 truststore")]
    Pkcs12(#[source] p12_keystore::error::Error),

    /// Upstream verification would trust nothing.
    #[error(
        "no trusted root certificates: the system store is empty and no extra CA bundle was given"
    )]
    NoRoots,

    /// An extra CA bundle holds no certificate usable as a trust anchor.
    #[error("CA bundle {} holds no usable PEM certificate", path.display())]
    EmptyBundle {
        /// The bundle file.
        path: PathBuf,
    },
}

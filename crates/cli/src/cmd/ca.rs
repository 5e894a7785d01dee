use std::process::ExitCode;

use anyhow::Context as _;

use super::println_out;
use crate::args::CaCmd;

pub(crate) fn run(cmd: CaCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCmd::Init { dir, force } => {
            tapwire_ca::init(&dir, force)?;
            eprintln!("created CA in {} (key readable only by you)", dir.display());
            eprintln!(
                "next: `tapwire ca export --out .` and make your clients trust tapwire-ca.crt"
            );
        }
        CaCmd::Export { dir, out, password } => {
            let ca = tapwire_ca::CertificateAuthority::load(&dir)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let files = ca.export_files(&out, &password)?;
            println_out(&format!(
                "{}\n{}",
                files.cert_pem.display(),
                files.pkcs12.display()
            ));
            eprintln!(
                "PEM: SSL_CERT_FILE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, curl --cacert\n\
                 Java: -Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword={password} -Djavax.net.ssl.trustStoreType=PKCS12",
                files.pkcs12.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

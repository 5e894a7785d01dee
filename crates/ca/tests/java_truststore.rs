//! The exported PKCS#12 truststore, checked by the JDK's own `keytool`.

use std::process::Command;

use tapwire_ca::{CertificateAuthority, TRUSTSTORE_ALIAS};

#[test]
fn keytool_lists_the_ca_as_a_trusted_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::generate("keytool test CA").unwrap();
    let files = ca.export_files(tmp.path(), "changeit").unwrap();

    let output = match Command::new("keytool")
        .args(["-list", "-v", "-keystore"])
        .arg(&files.pkcs12)
        .args(["-storepass", "changeit", "-storetype", "PKCS12"])
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: keytool is not on PATH (install a JDK to run this check)");
            return;
        }
        Err(e) => panic!("cannot run keytool: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("keytool stdout:\n{stdout}\nkeytool stderr:\n{stderr}");
    assert!(output.status.success(), "keytool failed: {stderr}");
    assert!(
        stdout.contains("Entry type: trustedCertEntry"),
        "keytool did not list a trustedCertEntry:\n{stdout}"
    );
    assert!(
        stdout.contains("Your keystore contains 1 entry"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Alias name: {TRUSTSTORE_ALIAS}")),
        "{stdout}"
    );
    assert!(stdout.contains("keytool test CA"), "{stdout}");

    // A wrong password must be refused: the MAC is really checked.
    let wrong = Command::new("keytool")
        .args(["-list", "-keystore"])
        .arg(&files.pkcs12)
        .args(["-storepass", "wrong-pass", "-storetype", "PKCS12"])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "keytool accepted a wrong password");
}

/// A JVM client trusting only the exported truststore completes a handshake
/// with a leaf from the same CA, verifying the hostname as HTTPS does.
#[tokio::test]
async fn jvm_trusts_leaves_through_the_exported_truststore() {
    use std::sync::Arc;
    use std::time::Duration;
    use tapwire_ca::LeafIssuer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("skipped: java is not on PATH (install a JDK to run this check)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = Arc::new(CertificateAuthority::generate("jvm test CA").unwrap());
    let files = ca.export_files(tmp.path(), "changeit").unwrap();
    let issuer = Arc::new(LeafIssuer::new(Arc::clone(&ca)));
    let config = issuer
        .server_config_for("127.0.0.1", vec![b"h2".to_vec(), b"http/1.1".to_vec()])
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(buf)
    });

    let probe = tmp.path().join("TlsProbe.java");
    std::fs::write(&probe, JAVA_PROBE).unwrap();
    let mut java = tokio::process::Command::new("java");
    java.arg(format!(
        "-Djavax.net.ssl.trustStore={}",
        files.pkcs12.display()
    ))
    .arg("-Djavax.net.ssl.trustStorePassword=changeit")
    .arg("-Djavax.net.ssl.trustStoreType=PKCS12")
    .arg(&probe)
    .arg(port.to_string())
    .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), java.output())
        .await
        .expect("java probe timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("java stdout:\n{stdout}\njava stderr:\n{stderr}");
    assert!(output.status.success(), "java probe failed:\n{stderr}");
    assert!(stdout.contains("alpn=h2 reply=pong"), "{stdout}");
    assert_eq!(&server.await.unwrap().unwrap(), b"ping");
    assert_eq!(issuer.mints(), 1);
    issuer.issue("api.example.test").unwrap();
    assert_eq!(issuer.mints(), 1, "the JVM's SNI did not choose the leaf");
}

const JAVA_PROBE: &str = r#"
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.*;

public class TlsProbe {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        SSLSocketFactory factory = (SSLSocketFactory) SSLSocketFactory.getDefault();
        Socket tcp = new Socket("127.0.0.1", port);
        // Layering over a plain socket lets the name differ from the address:
        // it becomes the SNI and the name HTTPS endpoint identification checks.
        try (SSLSocket tls = (SSLSocket) factory.createSocket(tcp, "api.example.test", port, true)) {
            SSLParameters params = tls.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            params.setApplicationProtocols(new String[] {"h2", "http/1.1"});
            tls.setSSLParameters(params);
            tls.startHandshake();
            tls.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
            tls.getOutputStream().flush();
            byte[] reply = tls.getInputStream().readNBytes(4);
            System.out.println("protocol=" + tls.getSession().getProtocol()
                + " alpn=" + tls.getApplicationProtocol()
                + " reply=" + new String(reply, StandardCharsets.US_ASCII));
        }
    }
}
"#;

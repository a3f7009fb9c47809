//! Starting the PostgreSQL gateway inside `latch serve`: settings from the config, the TLS
//! certificate (self-signed at first start unless configured), upstream passwords read once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use latch_config::{Config, Enforcement, GatewayTls, RecordingMode, RoleAccess};
use latch_gateway::{GatewaySettings, UpstreamRole, UpstreamTarget};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::exit::Failed;

/// The gateway's settings from the config (`[gateway]` and each resource's upstream).
pub fn settings(config: &Config) -> anyhow::Result<Option<(GatewaySettings, bool)>> {
    let Some(gateway) = &config.gateway else {
        return Ok(None);
    };
    let (tls, tls_end_point) = server_tls(&gateway.tls)?;
    let mut upstreams = HashMap::new();
    for (resource, upstream) in &config.upstreams {
        let mut roles = HashMap::new();
        for (role, credential) in &upstream.credentials {
            let password = credential.password.resolve().map_err(|err| {
                Failed(format!(
                    "resource `{resource}` role `{role}`: {err} (the gateway logs in upstream with it)"
                ))
            })?;
            roles.insert(
                role.clone(),
                UpstreamRole {
                    scram_keys: Default::default(),
                    username: credential.username.clone(),
                    password: password.map(Zeroizing::new),
                    // Nothing goes beyond write access, so a write role is only watched.
                    enforcement: match (credential.access, credential.enforcement) {
                        (RoleAccess::Read, Enforcement::Enforce) => {
                            latch_gateway::Enforcement::EnforceReadOnly
                        }
                        _ => latch_gateway::Enforcement::Audit,
                    },
                    recording: match upstream.recording {
                        RecordingMode::Buffered => latch_gateway::RecordingMode::Buffered,
                        RecordingMode::Strict => latch_gateway::RecordingMode::Strict,
                    },
                },
            );
        }
        upstreams.insert(
            resource.clone(),
            UpstreamTarget {
                address: upstream.address.clone(),
                database: upstream.database.clone(),
                tls: match (upstream.tls, &upstream.tls_ca_file) {
                    (false, _) => None,
                    (true, None) => Some(upstream_tls(webpki_roots())),
                    (true, Some(file)) => Some(upstream_tls(private_roots(resource, file)?)),
                },
                roles,
            },
        );
    }
    let settings = GatewaySettings {
        tls: Some(tls),
        tls_end_point,
        allow_plaintext: gateway.allow_plaintext,
        client_auth: match gateway.client_auth {
            latch_config::ClientAuth::ScramSha256 => latch_gateway::ClientAuth::ScramSha256,
            latch_config::ClientAuth::Password => latch_gateway::ClientAuth::Cleartext,
        },
        max_message_bytes: gateway.max_message_bytes,
        upstreams,
        recording_buffer: gateway.recording_buffer,
        relay_threads: gateway.relay_threads,
        redact_literals: gateway.redact_literals,
        ..GatewaySettings::default()
    };
    Ok(Some((settings, true)))
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The certificates of `tls_ca_file`, and only them: an upstream behind a private CA.
fn private_roots(resource: &str, file: &std::path::Path) -> anyhow::Result<rustls::RootCertStore> {
    let context = || {
        format!(
            "cannot read `{}`, the `tls_ca_file` of resource `{resource}`",
            file.display()
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).with_context(context)? {
        roots
            .add(cert.with_context(context)?)
            .with_context(context)?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "`{}`, the `tls_ca_file` of resource `{resource}`, holds no PEM certificate",
        file.display()
    );
    Ok(roots)
}

/// TLS toward upstreams, trusting `roots`.
fn upstream_tls(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        });
    Arc::new(config)
}

/// The certificate clients see: the configured files, or a self-signed pair created (key mode
/// 0600) at first start and reused after; with its `tls-server-end-point` data for SCRAM
/// channel binding, when its signature algorithm has one.
fn server_tls(tls: &GatewayTls) -> anyhow::Result<(Arc<rustls::ServerConfig>, Option<Vec<u8>>)> {
    let (cert, key) = match tls {
        GatewayTls::Files { cert, key } => (cert.clone(), key.clone()),
        GatewayTls::SelfSigned { cert, key } => {
            if !cert.exists() || !key.exists() {
                create_self_signed(cert, key)?;
            }
            (cert.clone(), key.clone())
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("cannot read the gateway certificate `{}`", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{}` is not a PEM certificate", cert.display()))?;
    if certs.is_empty() {
        return Err(Failed(format!(
            "`{}` holds no certificate (expected PEM `CERTIFICATE` blocks)",
            cert.display()
        ))
        .into());
    }
    let end_point = certs
        .first()
        .and_then(|leaf| latch_pgwire::scram::tls_server_end_point(leaf));
    let private = PrivateKeyDer::from_pem_file(&key).with_context(|| {
        format!(
            "cannot read the gateway key `{}` (expected a PEM private key)",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version available")?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .with_context(|| {
            format!(
                "the gateway certificate `{}` and key `{}` do not go together",
                cert.display(),
                key.display()
            )
        })?;
    Ok((Arc::new(config), end_point))
}

fn create_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .context("cannot create a self-signed certificate for the gateway")?;
    if let Some(dir) = key.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The private key is for latch's eyes only.
        options.mode(0o600);
    }
    let mut file = options
        .open(key)
        .with_context(|| format!("cannot create the gateway key `{}`", key.display()))?;
    std::io::Write::write_all(&mut file, generated.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem())
        .with_context(|| format!("cannot write `{}`", cert.display()))?;
    tracing::info!(cert = %cert.display(), "created a self-signed certificate for the gateway");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_tls_ca_file_is_read_or_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let generated = rcgen::generate_simple_self_signed(vec!["db".to_owned()]).unwrap();
        std::fs::write(&ca, generated.cert.pem()).unwrap();
        assert_eq!(private_roots("db", &ca).unwrap().len(), 1);

        let missing = private_roots("db", &dir.path().join("nope.pem")).unwrap_err();
        assert!(
            format!("{missing:#}").contains("the `tls_ca_file` of resource `db`"),
            "{missing:#}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let empty = private_roots("db", &empty).unwrap_err();
        assert!(
            empty.to_string().contains("holds no PEM certificate"),
            "{empty}"
        );
    }
}

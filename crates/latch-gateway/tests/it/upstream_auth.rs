//! The brokered credentials against a PostgreSQL that checks passwords: the shared server at
//! 127.0.0.1:5432 trusts every local connection, so these tests start a cluster of their own
//! (initdb into a temporary directory, a free port) whose pg_hba.conf asks for SCRAM-SHA-256,
//! md5, and SCRAM over TLS only, with a certificate made for the test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use latch_gateway::{Enforcement, RecordingMode, UpstreamRole, UpstreamTarget};
use zeroize::Zeroizing;

use crate::support::{CREDENTIAL, Harness, db_error};

const PG_BIN: &str = "/usr/lib/postgresql";

/// The directory of `initdb` and `pg_ctl` (Debian keeps them out of PATH).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(PG_BIN)
        .unwrap_or_else(|e| panic!("PostgreSQL's server binaries must be under {PG_BIN}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("no initdb under {PG_BIN}/*/bin"))
}

/// Runs a server binary as `postgres` when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path, args: &[&str]) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private PostgreSQL cluster, stopped and deleted on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// The server's certificate, to trust in the gateway's TLS client.
    cert_der: Vec<u8>,
}

impl Cluster {
    fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The server runs as `postgres`, which must own its directory.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let data_text = data.to_str().unwrap();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data_text,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );

        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(data.join("server.crt"), cert.cert.pem()).unwrap();
        std::fs::write(data.join("server.key"), cert.key_pair.serialize_pem()).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(data.join("server.crt"))
            .arg(data.join("server.key"))
            .status();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             fsync = off\nshared_buffers = 16MB\n",
            dir.path().display()
        );
        let mut postgresql_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        postgresql_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), postgresql_conf).unwrap();
        // First match wins: the admin is trusted (to set the test up), every other login must
        // prove its password, `tls_user` only over TLS.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all postgres trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             hostssl all tls_user 127.0.0.1/32 scram-sha-256\n\
             host all tls_user 127.0.0.1/32 reject\n\
             host all scram_user 127.0.0.1/32 scram-sha-256\n\
             host all md5_user 127.0.0.1/32 md5\n",
        )
        .unwrap();
        let log = dir.path().join("server.log");
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data_text,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        let cluster = Cluster {
            dir,
            port,
            bin,
            cert_der: cert.cert.der().to_vec(),
        };
        cluster.admin(
            "CREATE ROLE scram_user LOGIN PASSWORD 'scram-secret';\
             CREATE ROLE tls_user LOGIN PASSWORD 'tls-secret';\
             SET password_encryption = 'md5';\
             CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret';",
        );
        cluster
    }

    fn admin(&self, sql: &str) {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-XAtqc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn target(&self, username: &str, password: &str, tls: bool) -> UpstreamTarget {
        let tls = tls.then(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls::pki_types::CertificateDer::from(
                    self.cert_der.clone(),
                ))
                .unwrap();
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        });
        let role = UpstreamRole {
            scram_keys: Default::default(),
            username: username.to_owned(),
            password: Some(Zeroizing::new(password.to_owned())),
            enforcement: Enforcement::Audit,
            recording: RecordingMode::Buffered,
        };
        UpstreamTarget {
            address: format!("127.0.0.1:{}", self.port),
            database: Some("postgres".to_owned()),
            tls,
            roles: HashMap::from([("write".to_owned(), role)]),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::panic::catch_unwind(|| {
            as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    data.to_str().unwrap_or_default(),
                    "-m",
                    "immediate",
                    "stop",
                ],
            );
        });
    }
}

#[tokio::test]
async fn brokered_credentials_log_in_with_scram_md5_and_over_tls() {
    let cluster = Cluster::start();
    let upstreams = HashMap::from([
        (
            "scram".to_owned(),
            cluster.target("scram_user", "scram-secret", false),
        ),
        (
            "md5".to_owned(),
            cluster.target("md5_user", "md5-secret", false),
        ),
        (
            "tls".to_owned(),
            cluster.target("tls_user", "tls-secret", true),
        ),
        // TLS is required by pg_hba for this login: without it the server refuses.
        (
            "plain".to_owned(),
            cluster.target("tls_user", "tls-secret", false),
        ),
        (
            "wrong".to_owned(),
            cluster.target("scram_user", "not-the-password", false),
        ),
    ]);
    let scram_keys = upstreams["scram"].roles["write"].scram_keys.clone();
    let harness = Harness::start_with(|settings| settings.upstreams = upstreams).await;
    let addr = harness.addr;
    let connect = |resource: &str| {
        let conn = format!(
            "host=127.0.0.1 port={} user=alice password={CREDENTIAL} dbname={resource}:write sslmode=disable",
            addr.port()
        );
        async move {
            let (client, connection) =
                tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        }
    };

    for (resource, user, over_tls) in [
        ("scram", "scram_user", false),
        ("md5", "md5_user", false),
        ("tls", "tls_user", true),
    ] {
        let client = connect(resource)
            .await
            .unwrap_or_else(|e| panic!("{resource}: {e:?}"));
        let row = client
            .query_one(
                "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user, "{resource}");
        assert_eq!(row.get::<_, bool>(1), over_tls, "{resource}: TLS upstream");
    }

    // The second session reuses the first one's SCRAM keys; a password set again upstream
    // (same password, new salt) makes the next session derive them afresh, and it logs in.
    let again = connect("scram").await.unwrap();
    again.simple_query("SELECT 1").await.unwrap();
    assert_eq!(
        scram_keys.derivations(),
        1,
        "one derivation for two sessions"
    );
    cluster.admin("ALTER ROLE scram_user PASSWORD 'scram-secret'");
    let after_reset = connect("scram").await.unwrap();
    after_reset.simple_query("SELECT 1").await.unwrap();
    assert_eq!(scram_keys.derivations(), 2, "a new salt is derived for");

    for resource in ["plain", "wrong"] {
        let err = connect(resource)
            .await
            .err()
            .unwrap_or_else(|| panic!("{resource}: the upstream must refuse this login"));
        let (code, message) = db_error(&err);
        assert_eq!(code, "08004", "{resource}: {message}");
        assert!(
            message.starts_with(&format!("`{resource}` refused latch's connection")),
            "{resource}: the client is told the upstream refused: {message}"
        );
        assert!(
            !message.contains("not-the-password") && !message.contains("tls-secret"),
            "{resource}: the brokered password never reaches the client: {message}"
        );
    }

    harness.stop().await;
}

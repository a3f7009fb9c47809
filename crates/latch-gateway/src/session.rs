//! One connection from accept to close: client startup, the grant check, the upstream, the
//! relay, and the records that bracket it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use latch_pgwire::encode;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::Inner;
use crate::authority::{ConnectAttempt, SessionRecord};
use crate::client::{self, Accepted, fail};
use crate::error::SessionError;
use crate::registry::{CancelTarget, SessionShared};
use crate::relay::{Relay, SessionCtx};
use crate::settings::RecordingMode;
use crate::upstream::{self, UpstreamRequest};

pub(crate) async fn handle(
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    gw: Arc<Inner>,
    shutdown: CancellationToken,
) {
    let tcp = match TcpStream::from_std(tcp) {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::warn!(error = %e, %peer, "cannot register a connection with the runtime");
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let startup = tokio::time::timeout(
        gw.settings.startup_timeout,
        client::accept(tcp, peer, &gw.settings, &*gw.authority),
    );
    let accepted = tokio::select! {
        r = startup => r,
        () = shutdown.cancelled() => return,
    };
    let hello = match accepted {
        Err(_elapsed) => return,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection refused during startup");
            return;
        }
        Ok(Ok(Accepted::Cancel {
            process_id,
            secret_key,
        })) => {
            if let Some(target) = gw.registry.cancel_target(process_id, secret_key) {
                upstream::send_cancel(&target, Duration::from_secs(5)).await;
            }
            return;
        }
        Ok(Ok(Accepted::Session(hello))) => hello,
    };
    let mut hello = *hello;
    // Before the session is registered, authorize and the upstream connection are bounded by
    // `connect_timeout`; after, the session's end token is a child of `shutdown`.
    open(&mut hello, peer, &gw, &shutdown).await;
}

async fn open(
    hello: &mut client::ClientHello,
    peer: SocketAddr,
    gw: &Arc<Inner>,
    shutdown: &CancellationToken,
) {
    let tls = hello.stream.is_tls();
    let attempt = ConnectAttempt {
        user: hello.user.clone(),
        resource: hello.resource.clone(),
        role: hello.role.clone(),
        credential: hello.credential.clone(),
        client_addr: peer,
        application_name: hello.application_name.clone(),
        tls,
    };
    let grant = match gw.authority.authorize(attempt).await {
        Ok(g) => g,
        Err(refusal) => {
            let e = fail(&mut hello.stream, SessionError::Refused(refusal)).await;
            tracing::info!(%peer, user = %hello.user, resource = %hello.resource, error = %e, "connection refused");
            return;
        }
    };
    let Some(target) = gw.settings.upstreams.get(&hello.resource) else {
        // Checked during startup; the settings do not change.
        return;
    };
    let Some(role) = target.roles.get(&grant.role) else {
        let mut known: Vec<&str> = target.roles.keys().map(String::as_str).collect();
        known.sort_unstable();
        let err = SessionError::UnknownRole {
            role: grant.role.clone(),
            resource: hello.resource.clone(),
            known: known.join(", "),
        };
        fail(&mut hello.stream, err).await;
        return;
    };
    if grant.ends_at_ms <= gw.clock.now_ms() {
        fail(
            &mut hello.stream,
            SessionError::GrantAlreadyEnded {
                grant_id: grant.grant_id.clone(),
            },
        )
        .await;
        return;
    }
    let application_name = match &hello.application_name {
        Some(app) => format!("latch:{}:{}:{app}", grant.grant_id, grant.user),
        None => format!("latch:{}:{}", grant.grant_id, grant.user),
    };
    let req = UpstreamRequest {
        resource: &hello.resource,
        target,
        role,
        application_name: &application_name,
        client_params: &hello.params,
    };
    let up = match tokio::time::timeout(gw.settings.connect_timeout, upstream::connect(&req)).await
    {
        Ok(Ok(up)) => up,
        Ok(Err(e)) => {
            let e = fail(&mut hello.stream, e).await;
            tracing::warn!(%peer, resource = %hello.resource, error = %e, "upstream connection failed");
            return;
        }
        Err(_) => {
            let e = SessionError::UpstreamUnreachable {
                resource: hello.resource.clone(),
                address: target.address.clone(),
                cause: format!("no answer within {:?}", gw.settings.connect_timeout),
            };
            fail(&mut hello.stream, e).await;
            return;
        }
    };

    let started_at_ms = gw.clock.now_ms();
    let shared = gw.registry.insert(|process_id| SessionShared {
        // Lower case, as latch's other ids are (a ULID reads the same in either case).
        session_id: format!("ses_{}", ulid::Ulid::new().to_string().to_lowercase()),
        grant_id: grant.grant_id.clone(),
        user: grant.user.clone(),
        resource: hello.resource.clone(),
        role: grant.role.clone(),
        client_addr: peer,
        started_at_ms,
        ends_at_ms: grant.ends_at_ms,
        process_id,
        secret_key: rand::random(),
        cancel: CancelTarget {
            address: target.address.clone(),
            process_id: up.process_id,
            secret_key: up.secret_key,
        },
        statements: AtomicU64::new(0),
        end: shutdown.child_token(),
        end_reason: std::sync::Mutex::new(None),
    });
    // A revocation that raced with this connection's setup.
    if let Some((reason, at_ms)) = gw.registry.ended_grant(&grant.grant_id) {
        shared.request_end(reason, at_ms);
    }
    let wait = u64::try_from(grant.ends_at_ms.saturating_sub(gw.clock.now_ms())).unwrap_or(0);
    let ctx = SessionCtx {
        shared: Arc::clone(&shared),
        authority: Arc::clone(&gw.authority),
        tx: gw.tx.clone(),
        clock: Arc::clone(&gw.clock),
        enforcement: role.enforcement,
        recording: role.recording,
        redact: gw.settings.redact_literals,
        max_message: gw.settings.max_message_bytes,
        record_wait: gw.settings.record_wait,
        deadline: tokio::time::Instant::now() + Duration::from_millis(wait),
    };
    let started = SessionRecord::Started {
        session_id: shared.session_id.clone(),
        grant_id: grant.grant_id.clone(),
        user: grant.user.clone(),
        resource: hello.resource.clone(),
        role: grant.role.clone(),
        client_addr: peer,
        application_name: hello.application_name.clone(),
        at_ms: started_at_ms,
        tls,
        auth: hello.credential.method(),
    };
    let recorded = match role.recording {
        RecordingMode::Strict => gw
            .authority
            .record(std::slice::from_ref(&started))
            .await
            .map_err(|e| e.message),
        RecordingMode::Buffered => gw
            .tx
            .send(started)
            .await
            .map_err(|_| "the recorder stopped".to_owned()),
    };
    if let Err(cause) = recorded {
        fail(&mut hello.stream, SessionError::RecordingFailed(cause)).await;
        gw.registry.remove(shared.process_id);
        return;
    }

    let mut hi = Vec::with_capacity(up.parameter_status.len() + 64);
    encode::authentication_ok(&mut hi);
    hi.extend_from_slice(&up.parameter_status);
    encode::backend_key_data(&mut hi, shared.process_id, shared.secret_key);
    encode::ready_for_query(&mut hi, up.status);
    let client_stream = std::mem::replace(&mut hello.stream, crate::stream::Stream::Closed);
    let leftover = std::mem::take(&mut hello.leftover);
    let mut relay = Relay::new(
        &ctx,
        client_stream,
        up.stream,
        leftover,
        up.leftover,
        up.status,
    );
    relay.greet(&hi);
    tracing::info!(session = %shared.session_id, grant = %grant.grant_id, user = %grant.user, resource = %hello.resource, %peer, "session started");

    let exit = relay.run(&ctx).await;
    let (reason, due) = relay.close(&ctx, exit).await;
    gw.registry.remove(shared.process_id);
    let at_ms = gw.clock.now_ms();
    let revocation_delay_ms = due.map(|due| at_ms - due);
    let mut records = relay.take_outbox();
    records.push(SessionRecord::Ended {
        session_id: shared.session_id.clone(),
        grant_id: grant.grant_id.clone(),
        at_ms,
        reason: reason.clone(),
        bytes_in: relay.bytes_in,
        bytes_out: relay.bytes_out,
        statements: shared.statements.load(std::sync::atomic::Ordering::Relaxed),
        revocation_delay_ms,
    });
    for r in records {
        if tokio::time::timeout(gw.settings.record_wait, gw.tx.send(r))
            .await
            .is_err()
        {
            tracing::error!(session = %shared.session_id, "recording channel full at session end; record lost");
        }
    }
    tracing::info!(session = %shared.session_id, ?reason, ?revocation_delay_ms, "session ended");
}

//! Notifications end to end: a receiver that goes away and comes back gets every message once,
//! in the order of the ledger.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latch_api::{EventView, NotificationView};

use super::{Server, wait_until};

/// A webhook receiver on a fixed port that can stop listening (connections refused) and come
/// back, and that answers 503 to its first `fail_first` requests after coming back.
struct Flaky {
    address: String,
    /// Bodies it accepted (answered 200), in arrival order.
    accepted: Arc<Mutex<Vec<String>>>,
    /// Requests it answered 503.
    refused: Arc<AtomicUsize>,
    listening: Arc<AtomicBool>,
    fail_first: Arc<AtomicUsize>,
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let (head, body_start) = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&data[..i]).to_lowercase(), i + 4);
        }
    };
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "content-length")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < body_start + length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&data[body_start.min(data.len())..]).into_owned())
}

impl Flaky {
    /// Starts down: the port is reserved, then closed.
    fn start_down() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let flaky = Self {
            address: format!("127.0.0.1:{port}"),
            accepted: Arc::default(),
            refused: Arc::default(),
            listening: Arc::new(AtomicBool::new(false)),
            fail_first: Arc::default(),
        };
        let (address, accepted, refused, listening, fail_first) = (
            flaky.address.clone(),
            flaky.accepted.clone(),
            flaky.refused.clone(),
            flaky.listening.clone(),
            flaky.fail_first.clone(),
        );
        std::thread::spawn(move || {
            let mut listener: Option<TcpListener> = None;
            loop {
                let want = listening.load(Ordering::SeqCst);
                if want && listener.is_none() {
                    let bound = TcpListener::bind(&address).unwrap();
                    bound.set_nonblocking(true).unwrap();
                    listener = Some(bound);
                } else if !want {
                    listener = None;
                }
                let Some(open) = &listener else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                match open.accept() {
                    Ok((mut stream, _)) => {
                        let Some(body) = read_request(&mut stream) else {
                            continue;
                        };
                        let refuse = fail_first
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        let answer: &[u8] = if refuse {
                            refused.fetch_add(1, Ordering::SeqCst);
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        } else {
                            accepted.lock().unwrap().push(body);
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                        };
                        let _ = stream.write_all(answer);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        flaky
    }

    /// Listens again; its first `fail_first` requests get 503.
    fn come_back(&self, fail_first: usize) {
        self.fail_first.store(fail_first, Ordering::SeqCst);
        self.listening.store(true, Ordering::SeqCst);
    }

    /// The `id`s of the accepted bodies, in arrival order.
    fn ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|body| {
                let value: serde_json::Value = serde_json::from_str(body).unwrap();
                value["id"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

/// The webhook channel `hook` at `url`, receiving every request and grant event.
fn webhook_config(dir: &std::path::Path, url: &str) -> String {
    std::fs::write(dir.join("hook.secret"), "s3cret").unwrap();
    format!(
        r#"
[audit]
enabled = false

[notify]

[[notify.channels]]
name = "hook"
kind = "webhook"
url = "{url}"
secret_file = "{}"

[[notify.routes]]
events = ["request.*", "grant.*"]
channel = "hook"
"#,
        dir.join("hook.secret").display()
    )
}

/// The receiver is not listening while requests are made and decided; the first message fails
/// and waits for its retry, and everything after it waits behind it. The receiver comes back,
/// refuses once more (503), then accepts: every request and grant event arrives exactly once,
/// in ledger order.
#[test]
fn a_receiver_down_then_up_gets_every_message_once_in_order() {
    let receiver = Flaky::start_down();
    let url = format!("http://{}/hook", receiver.address);
    let server = Server::start_configured(None, |dir| webhook_config(dir, &url));
    let alice = server.token("alice");
    let bob = server.token("bob");
    let dave = server.token("dave");

    let first = server.pending_request(&alice, "INC-1 first while down");
    // The first message has been tried and refused: it waits for its next attempt.
    wait_until("the first delivery fails", Duration::from_secs(10), || {
        let pending: Vec<NotificationView> = server
            .run_as(
                &dave,
                &["notifications", "--status", "pending", "--output", "json"],
            )
            .success()
            .json();
        pending.iter().any(|n| n.attempts >= 1)
    });
    // More events while it is down: each must wait behind the first.
    server.run_as(&bob, &["approve", &first.id]).success();
    let second = server.pending_request(&alice, "INC-2 second while down");
    server
        .run_as(&bob, &["deny", &second.id, "--reason", "not now"])
        .success();
    let third = server.pending_request(&alice, "INC-3 third while down");
    server.run_as(&alice, &["cancel", &third.id]).success();
    let grant_id = first.id.replacen("req_", "grt_", 1);
    server
        .run_as(&bob, &["revoke", &grant_id, "--reason", "done"])
        .success();

    receiver.come_back(1);

    let events: Vec<EventView> = server
        .run_as(&dave, &["events", "--output", "json", "--limit", "1000"])
        .success()
        .json();
    let expected: Vec<String> = events
        .iter()
        .filter(|e| e.event_type.starts_with("request.") || e.event_type.starts_with("grant."))
        .map(|e| format!("evt_{}", e.seq))
        .collect();
    assert_eq!(expected.len(), 8, "{events:#?}");
    wait_until(
        "every message is delivered",
        Duration::from_secs(40),
        || receiver.ids().len() >= expected.len(),
    );
    // Nothing more trickles in (no duplicate from a retry).
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.ids(), expected, "exactly once, in ledger order");
    assert_eq!(receiver.refused.load(Ordering::SeqCst), 1);
    let still: Vec<NotificationView> = server
        .run_as(
            &dave,
            &["notifications", "--status", "pending", "--output", "json"],
        )
        .success()
        .json();
    assert!(still.is_empty(), "{still:#?}");
}

//! Property tests of the codec through its public API: encode→decode round trips, no panic on
//! arbitrary bytes, and chunked input decoding like whole input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use latch_pgwire::{
    Authentication, BackendMessage, CopyResponse, ErrorFields, FrontendMessage, ParamTypes,
    Startup, Target, decode_backend, decode_frontend, decode_startup,
};
use proptest::prelude::*;

const MAX: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Front {
    Query(String),
    Parse(String, String, Vec<u8>),
    Bind(String, String, u16),
    Describe(bool, String),
    Execute(String, i32),
    Close(bool, String),
    Sync,
    Flush,
    CopyData(Vec<u8>),
    CopyDone,
    CopyFail(String),
    Terminate,
    Auth(Vec<u8>),
    FunctionCall(u32, Vec<u8>),
    Unknown(u8, Vec<u8>),
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,24}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn front() -> impl Strategy<Value = Front> {
    prop_oneof![
        text().prop_map(Front::Query),
        (
            text(),
            text(),
            proptest::collection::vec(any::<[u8; 4]>(), 0..5)
        )
            .prop_map(|(n, s, t)| Front::Parse(n, s, t.concat())),
        (text(), text(), 0u16..20).prop_map(|(p, s, n)| Front::Bind(p, s, n)),
        (any::<bool>(), text()).prop_map(|(b, n)| Front::Describe(b, n)),
        (text(), any::<i32>()).prop_map(|(p, m)| Front::Execute(p, m)),
        (any::<bool>(), text()).prop_map(|(b, n)| Front::Close(b, n)),
        Just(Front::Sync),
        Just(Front::Flush),
        bytes().prop_map(Front::CopyData),
        Just(Front::CopyDone),
        text().prop_map(Front::CopyFail),
        Just(Front::Terminate),
        bytes().prop_map(Front::Auth),
        (any::<u32>(), bytes()).prop_map(|(f, a)| Front::FunctionCall(f, a)),
        (
            any::<u8>().prop_filter("unknown tags only", |t| !b"QPBDECSHdcfXpF".contains(t)),
            bytes()
        )
            .prop_map(|(t, b)| Front::Unknown(t, b)),
    ]
}

fn target(b: bool) -> Target {
    if b { Target::Statement } else { Target::Portal }
}

fn view(f: &Front) -> FrontendMessage<'_> {
    match f {
        Front::Query(sql) => FrontendMessage::Query { sql },
        Front::Parse(name, sql, t) => FrontendMessage::Parse {
            name,
            sql,
            param_types: ParamTypes::from_raw(t),
        },
        Front::Bind(portal, statement, n) => FrontendMessage::Bind {
            portal,
            statement,
            param_count: *n,
        },
        Front::Describe(b, name) => FrontendMessage::Describe {
            target: target(*b),
            name,
        },
        Front::Execute(portal, max_rows) => FrontendMessage::Execute {
            portal,
            max_rows: *max_rows,
        },
        Front::Close(b, name) => FrontendMessage::Close {
            target: target(*b),
            name,
        },
        Front::Sync => FrontendMessage::Sync,
        Front::Flush => FrontendMessage::Flush,
        Front::CopyData(d) => FrontendMessage::CopyData(d),
        Front::CopyDone => FrontendMessage::CopyDone,
        Front::CopyFail(message) => FrontendMessage::CopyFail { message },
        Front::Terminate => FrontendMessage::Terminate,
        Front::Auth(b) => FrontendMessage::AuthResponse(b),
        Front::FunctionCall(function, args) => FrontendMessage::FunctionCall {
            function: *function,
            args,
        },
        Front::Unknown(tag, body) => FrontendMessage::Unknown { tag: *tag, body },
    }
}

#[derive(Debug, Clone)]
enum Back {
    AuthOk,
    AuthClear,
    AuthMd5([u8; 4]),
    AuthContinue(Vec<u8>),
    AuthFinal(Vec<u8>),
    Param(String, String),
    Key(i32, i32),
    Ready(u8),
    Error(String, String, String, Option<String>, Option<String>),
    Complete(String),
    CopyIn(u8, u16),
    Other(u8, Vec<u8>),
}

fn back() -> impl Strategy<Value = Back> {
    prop_oneof![
        Just(Back::AuthOk),
        Just(Back::AuthClear),
        any::<[u8; 4]>().prop_map(Back::AuthMd5),
        bytes().prop_map(Back::AuthContinue),
        bytes().prop_map(Back::AuthFinal),
        (text(), text()).prop_map(|(n, v)| Back::Param(n, v)),
        (any::<i32>(), any::<i32>()).prop_map(|(p, k)| Back::Key(p, k)),
        prop_oneof![Just(b'I'), Just(b'T'), Just(b'E')].prop_map(Back::Ready),
        (
            "[A-Z]{1,7}",
            "[0-9A-Z]{5}",
            text(),
            proptest::option::of(text()),
            proptest::option::of(text())
        )
            .prop_map(|(s, c, m, d, h)| Back::Error(s, c, m, d, h)),
        text().prop_map(Back::Complete),
        (0u8..2, 0u16..8).prop_map(|(f, c)| Back::CopyIn(f, c)),
        (
            any::<u8>().prop_filter("other tags only", |t| !b"RSKZENCGHW".contains(t)),
            bytes()
        )
            .prop_map(|(t, b)| Back::Other(t, b)),
    ]
}

fn back_view(b: &Back) -> BackendMessage<'_> {
    match b {
        Back::AuthOk => BackendMessage::Authentication(Authentication::Ok),
        Back::AuthClear => BackendMessage::Authentication(Authentication::CleartextPassword),
        Back::AuthMd5(salt) => {
            BackendMessage::Authentication(Authentication::Md5Password { salt: *salt })
        }
        Back::AuthContinue(d) => BackendMessage::Authentication(Authentication::SaslContinue(d)),
        Back::AuthFinal(d) => BackendMessage::Authentication(Authentication::SaslFinal(d)),
        Back::Param(name, value) => BackendMessage::ParameterStatus { name, value },
        Back::Key(p, k) => BackendMessage::BackendKeyData {
            process_id: *p,
            secret_key: *k,
        },
        Back::Ready(status) => BackendMessage::ReadyForQuery { status: *status },
        Back::Error(severity, code, message, detail, hint) => {
            BackendMessage::ErrorResponse(ErrorFields {
                severity,
                code,
                message,
                detail: detail.as_deref(),
                hint: hint.as_deref(),
            })
        }
        Back::Complete(tag) => BackendMessage::CommandComplete { tag },
        Back::CopyIn(format, columns) => BackendMessage::CopyInResponse(CopyResponse {
            format: *format,
            columns: *columns,
        }),
        Back::Other(tag, body) => BackendMessage::Other { tag: *tag, body },
    }
}

/// Feeds `stream` to `decode` in the given chunk sizes, as a relay would: append, decode every
/// complete message, keep the rest. Returns each message re-encoded.
fn decode_chunked<F>(stream: &[u8], chunks: &[usize], mut decode: F) -> Vec<Vec<u8>>
where
    F: FnMut(&[u8]) -> Option<(Vec<u8>, usize)>,
{
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().cycle();
    while fed < stream.len() {
        let n = (*sizes.next().unwrap()).clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        while let Some((msg, used)) = decode(&buf) {
            out.push(msg);
            buf.drain(..used);
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    out
}

proptest! {
    #[test]
    fn frontend_round_trips(msg in front()) {
        let v = view(&msg);
        let mut out = Vec::new();
        v.encode(&mut out);
        let (back, used) = decode_frontend(&out, MAX).unwrap().unwrap();
        prop_assert_eq!(back, v);
        prop_assert_eq!(used, out.len());
    }

    #[test]
    fn backend_round_trips(msg in back()) {
        let v = back_view(&msg);
        let mut out = Vec::new();
        v.encode(&mut out);
        let (back, used) = decode_backend(&out, MAX).unwrap().unwrap();
        prop_assert_eq!(back, v);
        prop_assert_eq!(used, out.len());
    }

    #[test]
    fn startup_round_trips(params in proptest::collection::vec(("[^\u{0}]{1,12}", text()), 0..6)) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut out = Vec::new();
        latch_pgwire::encode::startup_message(&mut out, &pairs);
        prop_assume!(out.len() <= latch_pgwire::MAX_STARTUP_LEN);
        let (msg, used) = decode_startup(&out, usize::MAX).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        let Startup::Startup(p) = msg else { panic!("{msg:?}") };
        prop_assert_eq!(p.iter().collect::<Vec<_>>(), pairs);
    }

    #[test]
    fn decoders_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..512) {
        let _ = decode_startup(&input, max);
        let _ = decode_frontend(&input, max);
        let _ = decode_backend(&input, max);
        if let Some((&tag, body)) = input.split_first() {
            let _ = latch_pgwire::frontend::decode_body(tag, body);
            let _ = latch_pgwire::backend::decode_body(tag, body);
            let _ = latch_pgwire::frontend::password(body);
            let _ = latch_pgwire::frontend::sasl_initial_response(body);
        }
    }

    #[test]
    fn decoders_never_panic_on_plausible_frames(tag in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut input = vec![tag];
        input.extend_from_slice(&(i32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        input.extend_from_slice(&body);
        let _ = decode_frontend(&input, MAX);
        let _ = decode_backend(&input, MAX);
        let _ = decode_startup(&input[1..], MAX);
    }

    #[test]
    fn chunked_frontend_stream_decodes_like_whole(msgs in proptest::collection::vec(front(), 1..12), chunks in proptest::collection::vec(1usize..40, 1..8)) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for m in &msgs {
            let mut one = Vec::new();
            view(m).encode(&mut one);
            stream.extend_from_slice(&one);
            expected.push(one);
        }
        let got = decode_chunked(&stream, &chunks, |buf| {
            decode_frontend(buf, MAX).unwrap().map(|(m, n)| {
                let mut re = Vec::new();
                m.encode(&mut re);
                (re, n)
            })
        });
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn chunked_backend_stream_decodes_like_whole(msgs in proptest::collection::vec(back(), 1..12), chunks in proptest::collection::vec(1usize..40, 1..8)) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for m in &msgs {
            let mut one = Vec::new();
            back_view(m).encode(&mut one);
            stream.extend_from_slice(&one);
            expected.push(one);
        }
        let got = decode_chunked(&stream, &chunks, |buf| {
            decode_backend(buf, MAX).unwrap().map(|(m, n)| {
                let mut re = Vec::new();
                m.encode(&mut re);
                (re, n)
            })
        });
        prop_assert_eq!(got, expected);
    }
}

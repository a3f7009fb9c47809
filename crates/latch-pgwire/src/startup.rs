//! The first packet of a connection: SSLRequest, GSSENCRequest, CancelRequest or StartupMessage.
//! It has no type byte: a length (including itself), a 32-bit code, then the body.

use crate::error::{ProtocolError, Tag};
use crate::reader::{Reader, frame_untagged, put_cstr, put_i32};

/// PostgreSQL refuses startup packets longer than this (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: i32 = 196_608;
/// The code of an SSLRequest.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// The code of a GSSENCRequest.
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// The code of a CancelRequest.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// A decoded startup packet, borrowing its parameters from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup<'a> {
    /// The client asks for TLS; the answer is one byte, `S` or `N`.
    SslRequest,
    /// The client asks for GSSAPI encryption; latch answers `N`.
    GssEncRequest,
    /// Sent on a new connection to cancel the query running on another one.
    Cancel { process_id: i32, secret_key: i32 },
    /// Protocol 3.0 StartupMessage with its `name=value` parameters.
    Startup(StartupParams<'a>),
}

/// The parameters of a StartupMessage, validated at decode time (UTF-8, nul-terminated pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartupParams<'a> {
    /// Pairs of nul-terminated strings, without the final empty terminator.
    raw: &'a [u8],
}

impl<'a> StartupParams<'a> {
    /// Every `(name, value)` pair in the order the client sent them.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut r = Reader::new(0, self.raw);
        std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            // INVARIANT: `raw` was validated by `decode_startup`, so these reads succeed.
            let name = r.cstr().ok()?;
            let value = r.cstr().ok()?;
            Some((name, value))
        })
    }

    /// The value of a parameter (`user`, `database`, `application_name`, …).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Decodes the startup packet at the start of `buf`. `Ok(None)` when more bytes are needed.
/// `max_len` is capped at [`MAX_STARTUP_LEN`], as PostgreSQL does.
pub fn decode_startup(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(Startup<'_>, usize)>, ProtocolError> {
    let max_len = max_len.min(MAX_STARTUP_LEN);
    let Some(len) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*len);
    if len < 8 {
        return Err(ProtocolError::BadLength {
            tag: Tag::STARTUP,
            len: i64::from(len),
        });
    }
    let total = usize::try_from(len).unwrap_or(usize::MAX);
    if total > max_len {
        return Err(ProtocolError::TooLarge {
            tag: Tag::STARTUP,
            len: total,
            max: max_len,
        });
    }
    let Some(packet) = buf.get(4..total) else {
        return Ok(None);
    };
    let mut r = Reader::new(0, packet);
    let code = r.i32()?;
    let msg = match code {
        SSL_REQUEST_CODE => {
            r.finish()?;
            Startup::SslRequest
        }
        GSSENC_REQUEST_CODE => {
            r.finish()?;
            Startup::GssEncRequest
        }
        CANCEL_REQUEST_CODE => {
            let process_id = r.i32()?;
            let secret_key = r.i32()?;
            r.finish()?;
            Startup::Cancel {
                process_id,
                secret_key,
            }
        }
        PROTOCOL_3_0 => {
            let raw = r.rest();
            // The list ends with an empty name: a lone nul after the last pair.
            let Some((&0, pairs)) = raw.split_last() else {
                return Err(ProtocolError::malformed(
                    0,
                    "parameter list without final terminator",
                ));
            };
            let mut check = Reader::new(0, pairs);
            while !check.is_empty() {
                let name = check.cstr()?;
                if name.is_empty() {
                    return Err(ProtocolError::malformed(0, "empty parameter name"));
                }
                check.cstr()?;
            }
            Startup::Startup(StartupParams { raw: pairs })
        }
        other => {
            let [major_hi, major_lo, minor_hi, minor_lo] = other.to_be_bytes();
            return Err(ProtocolError::UnsupportedVersion {
                major: u16::from_be_bytes([major_hi, major_lo]),
                minor: u16::from_be_bytes([minor_hi, minor_lo]),
            });
        }
    };
    Ok(Some((msg, total)))
}

impl Startup<'_> {
    /// Writes the packet (used toward the upstream and in tests).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Startup::SslRequest => frame_untagged(out, |o| put_i32(o, SSL_REQUEST_CODE)),
            Startup::GssEncRequest => frame_untagged(out, |o| put_i32(o, GSSENC_REQUEST_CODE)),
            Startup::Cancel {
                process_id,
                secret_key,
            } => frame_untagged(out, |o| {
                put_i32(o, CANCEL_REQUEST_CODE);
                put_i32(o, *process_id);
                put_i32(o, *secret_key);
            }),
            Startup::Startup(params) => frame_untagged(out, |o| {
                put_i32(o, PROTOCOL_3_0);
                o.extend_from_slice(params.raw);
                o.push(0);
            }),
        }
    }
}

/// Writes a StartupMessage (protocol 3.0) with these parameters.
pub fn encode_startup_message(out: &mut Vec<u8>, params: &[(&str, &str)]) {
    frame_untagged(out, |o| {
        put_i32(o, PROTOCOL_3_0);
        for (name, value) in params {
            put_cstr(o, name.as_bytes());
            put_cstr(o, value.as_bytes());
        }
        o.push(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Startup<'_>) {
        let mut out = Vec::new();
        msg.encode(&mut out);
        let (back, used) = decode_startup(&out, MAX_STARTUP_LEN).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, out.len());
        for cut in 0..out.len() {
            assert_eq!(
                decode_startup(&out[..cut], MAX_STARTUP_LEN),
                Ok(None),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn ssl_request_round_trips() {
        round_trip(Startup::SslRequest);
    }

    #[test]
    fn gssenc_request_round_trips() {
        round_trip(Startup::GssEncRequest);
    }

    #[test]
    fn cancel_request_round_trips() {
        round_trip(Startup::Cancel {
            process_id: 42,
            secret_key: -7,
        });
    }

    #[test]
    fn startup_message_round_trips_and_reads_parameters() {
        let mut out = Vec::new();
        encode_startup_message(
            &mut out,
            &[
                ("user", "alice"),
                ("database", "payments-db:read"),
                ("application_name", "psql"),
            ],
        );
        let (msg, used) = decode_startup(&out, MAX_STARTUP_LEN).unwrap().unwrap();
        assert_eq!(used, out.len());
        let Startup::Startup(params) = msg else {
            panic!("not a startup message: {msg:?}")
        };
        assert_eq!(params.get("user"), Some("alice"));
        assert_eq!(params.get("database"), Some("payments-db:read"));
        assert_eq!(params.get("options"), None);
        assert_eq!(params.iter().count(), 3);
        round_trip(msg);
    }

    #[test]
    fn other_versions_are_refused_clearly() {
        let mut out = Vec::new();
        frame_untagged(&mut out, |o| {
            put_i32(o, 0x0002_0000);
            o.push(0);
        });
        let err = decode_startup(&out, MAX_STARTUP_LEN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported frontend protocol 2.0: latch speaks protocol 3.0 (use a client from PostgreSQL 7.4 or later)"
        );
    }

    #[test]
    fn oversized_startup_is_refused_from_its_header() {
        let header = 20_000_i32.to_be_bytes();
        let err = decode_startup(&header, usize::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message `startup` of 20000 bytes exceeds the limit of 10000 bytes"
        );
    }

    #[test]
    fn short_length_is_refused() {
        let err = decode_startup(&[0, 0, 0, 4, 0, 0, 0, 0], MAX_STARTUP_LEN).unwrap_err();
        assert_eq!(err.to_string(), "invalid length 4 in message `startup`");
    }

    #[test]
    fn missing_terminator_is_refused() {
        let mut out = Vec::new();
        frame_untagged(&mut out, |o| {
            put_i32(o, PROTOCOL_3_0);
            o.extend_from_slice(b"user\0alice");
        });
        assert!(decode_startup(&out, MAX_STARTUP_LEN).is_err());
    }
}

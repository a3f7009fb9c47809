//! Messages a server sends that a relay must understand, decoded as borrowed views. Everything
//! else (DataRow, RowDescription, …) is [`BackendMessage::Other`] and relayed untouched.

use crate::error::ProtocolError;
use crate::reader::{Reader, frame, put_cstr, put_i16, put_i32, split_frame};

/// The SASL mechanisms a server offers, kept raw (nul-terminated names, then an empty name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslMechanisms<'a>(&'a [u8]);

impl<'a> SaslMechanisms<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(b'R', self.0);
        std::iter::from_fn(move || {
            let name = r.cstr().ok()?;
            (!name.is_empty()).then_some(name)
        })
    }

    pub fn contains(&self, mechanism: &str) -> bool {
        self.iter().any(|m| m == mechanism)
    }
}

/// An `R` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication<'a> {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: SaslMechanisms<'a>,
    },
    SaslContinue(&'a [u8]),
    SaslFinal(&'a [u8]),
    /// Kerberos, GSS, SSPI, …: not supported by latch toward the upstream.
    Other {
        code: i32,
        body: &'a [u8],
    },
}

/// The fields of an ErrorResponse or NoticeResponse that latch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorFields<'a> {
    /// `S` (localized) or, when absent, `V`.
    pub severity: &'a str,
    /// `C`: the SQLSTATE.
    pub code: &'a str,
    /// `M`: the primary message.
    pub message: &'a str,
    /// `D`.
    pub detail: Option<&'a str>,
    /// `H`.
    pub hint: Option<&'a str>,
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 text, 1 binary.
    pub format: u8,
    /// Number of columns (their format codes are skipped).
    pub columns: u16,
}

/// A server message, borrowing from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    Authentication(Authentication<'a>),
    ParameterStatus {
        name: &'a str,
        value: &'a str,
    },
    BackendKeyData {
        process_id: i32,
        secret_key: i32,
    },
    /// `Z` with the transaction status (`I`, `T` or `E`).
    ReadyForQuery {
        status: u8,
    },
    ErrorResponse(ErrorFields<'a>),
    NoticeResponse(ErrorFields<'a>),
    /// `C` with its tag, e.g. `SELECT 5`.
    CommandComplete {
        tag: &'a str,
    },
    CopyInResponse(CopyResponse),
    CopyOutResponse(CopyResponse),
    CopyBothResponse(CopyResponse),
    Other {
        tag: u8,
        body: &'a [u8],
    },
}

/// Decodes the message at the start of `buf`. `Ok(None)` when it is not complete yet.
pub fn decode_backend(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(BackendMessage<'_>, usize)>, ProtocolError> {
    let Some((tag, body, total)) = split_frame(buf, max_len)? else {
        return Ok(None);
    };
    Ok(Some((decode_body(tag, body)?, total)))
}

/// Decodes a message body whose frame was already split off.
pub fn decode_body(tag: u8, body: &[u8]) -> Result<BackendMessage<'_>, ProtocolError> {
    let mut r = Reader::new(tag, body);
    let msg = match tag {
        b'R' => BackendMessage::Authentication(match r.i32()? {
            0 => Authentication::Ok,
            3 => Authentication::CleartextPassword,
            5 => Authentication::Md5Password {
                salt: r.array::<4>()?,
            },
            10 => {
                let raw = r.rest();
                let mut check = Reader::new(tag, raw);
                while !check.cstr()?.is_empty() {}
                check.finish()?;
                Authentication::Sasl {
                    mechanisms: SaslMechanisms(raw),
                }
            }
            11 => Authentication::SaslContinue(r.rest()),
            12 => Authentication::SaslFinal(r.rest()),
            code => Authentication::Other {
                code,
                body: r.rest(),
            },
        }),
        b'S' => BackendMessage::ParameterStatus {
            name: r.cstr()?,
            value: r.cstr()?,
        },
        b'K' => BackendMessage::BackendKeyData {
            process_id: r.i32()?,
            secret_key: r.i32()?,
        },
        b'Z' => BackendMessage::ReadyForQuery { status: r.u8()? },
        b'E' => BackendMessage::ErrorResponse(error_fields(&mut r)?),
        b'N' => BackendMessage::NoticeResponse(error_fields(&mut r)?),
        b'C' => BackendMessage::CommandComplete { tag: r.cstr()? },
        b'G' => BackendMessage::CopyInResponse(copy_response(&mut r)?),
        b'H' => BackendMessage::CopyOutResponse(copy_response(&mut r)?),
        b'W' => BackendMessage::CopyBothResponse(copy_response(&mut r)?),
        _ => return Ok(BackendMessage::Other { tag, body }),
    };
    r.finish()?;
    Ok(msg)
}

fn error_fields<'a>(r: &mut Reader<'a>) -> Result<ErrorFields<'a>, ProtocolError> {
    let mut fields = ErrorFields::default();
    let mut severity_v = "";
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        let value = r.cstr()?;
        match code {
            b'S' => fields.severity = value,
            b'V' => severity_v = value,
            b'C' => fields.code = value,
            b'M' => fields.message = value,
            b'D' => fields.detail = Some(value),
            b'H' => fields.hint = Some(value),
            _ => {}
        }
    }
    if fields.severity.is_empty() {
        fields.severity = severity_v;
    }
    Ok(fields)
}

fn copy_response(r: &mut Reader<'_>) -> Result<CopyResponse, ProtocolError> {
    let format = r.u8()?;
    let columns = r.count()?;
    r.bytes(usize::from(columns) * 2)?;
    Ok(CopyResponse { format, columns })
}

/// Rows affected or returned, from a CommandComplete tag: `SELECT 5` → 5, `INSERT 0 3` → 3,
/// `UPDATE 7` → 7; `None` for tags without a count (`CREATE TABLE`, `BEGIN`).
pub fn rows_from_tag(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let command = words.next()?;
    let last = tag.rsplit(' ').next()?;
    match command {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY" => {
            if tag.len() == command.len() {
                return None;
            }
            last.parse().ok()
        }
        _ => None,
    }
}

impl BackendMessage<'_> {
    pub fn tag(&self) -> u8 {
        match self {
            BackendMessage::Authentication(_) => b'R',
            BackendMessage::ParameterStatus { .. } => b'S',
            BackendMessage::BackendKeyData { .. } => b'K',
            BackendMessage::ReadyForQuery { .. } => b'Z',
            BackendMessage::ErrorResponse(_) => b'E',
            BackendMessage::NoticeResponse(_) => b'N',
            BackendMessage::CommandComplete { .. } => b'C',
            BackendMessage::CopyInResponse(_) => b'G',
            BackendMessage::CopyOutResponse(_) => b'H',
            BackendMessage::CopyBothResponse(_) => b'W',
            BackendMessage::Other { tag, .. } => *tag,
        }
    }

    /// Writes the message. Copy responses are written with every column in the overall format.
    pub fn encode(&self, out: &mut Vec<u8>) {
        frame(out, self.tag(), |o| match self {
            BackendMessage::Authentication(auth) => match auth {
                Authentication::Ok => put_i32(o, 0),
                Authentication::CleartextPassword => put_i32(o, 3),
                Authentication::Md5Password { salt } => {
                    put_i32(o, 5);
                    o.extend_from_slice(salt);
                }
                Authentication::Sasl { mechanisms } => {
                    put_i32(o, 10);
                    o.extend_from_slice(mechanisms.0);
                }
                Authentication::SaslContinue(data) => {
                    put_i32(o, 11);
                    o.extend_from_slice(data);
                }
                Authentication::SaslFinal(data) => {
                    put_i32(o, 12);
                    o.extend_from_slice(data);
                }
                Authentication::Other { code, body } => {
                    put_i32(o, *code);
                    o.extend_from_slice(body);
                }
            },
            BackendMessage::ParameterStatus { name, value } => {
                put_cstr(o, name.as_bytes());
                put_cstr(o, value.as_bytes());
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                put_i32(o, *process_id);
                put_i32(o, *secret_key);
            }
            BackendMessage::ReadyForQuery { status } => o.push(*status),
            BackendMessage::ErrorResponse(f) | BackendMessage::NoticeResponse(f) => {
                put_field(o, b'S', f.severity);
                put_field(o, b'V', f.severity);
                put_field(o, b'C', f.code);
                put_field(o, b'M', f.message);
                if let Some(d) = f.detail {
                    put_field(o, b'D', d);
                }
                if let Some(h) = f.hint {
                    put_field(o, b'H', h);
                }
                o.push(0);
            }
            BackendMessage::CommandComplete { tag } => put_cstr(o, tag.as_bytes()),
            BackendMessage::CopyInResponse(c)
            | BackendMessage::CopyOutResponse(c)
            | BackendMessage::CopyBothResponse(c) => {
                o.push(c.format);
                put_i16(o, i16::try_from(c.columns).unwrap_or(i16::MAX));
                for _ in 0..c.columns {
                    put_i16(o, i16::from(c.format));
                }
            }
            BackendMessage::Other { body, .. } => o.extend_from_slice(body),
        });
    }
}

pub(crate) fn put_field(out: &mut Vec<u8>, code: u8, value: &str) {
    out.push(code);
    put_cstr(out, value.as_bytes());
}

/// Writes an AuthenticationSASL offering these mechanisms.
pub fn encode_auth_sasl(out: &mut Vec<u8>, mechanisms: &[&str]) {
    frame(out, b'R', |o| {
        put_i32(o, 10);
        for m in mechanisms {
            put_cstr(o, m.as_bytes());
        }
        o.push(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn round_trip(msg: BackendMessage<'_>) {
        let mut out = Vec::new();
        msg.encode(&mut out);
        let (back, used) = decode_backend(&out, MAX).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, out.len());
        for cut in 0..out.len() {
            assert_eq!(decode_backend(&out[..cut], MAX), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn authentication_round_trips() {
        round_trip(BackendMessage::Authentication(Authentication::Ok));
        round_trip(BackendMessage::Authentication(
            Authentication::CleartextPassword,
        ));
        round_trip(BackendMessage::Authentication(
            Authentication::Md5Password { salt: [1, 2, 3, 4] },
        ));
        round_trip(BackendMessage::Authentication(
            Authentication::SaslContinue(b"r=abc,s=x,i=1"),
        ));
        round_trip(BackendMessage::Authentication(Authentication::SaslFinal(
            b"v=xyz",
        )));
        round_trip(BackendMessage::Authentication(Authentication::Other {
            code: 7,
            body: b"",
        }));
    }

    #[test]
    fn authentication_sasl_lists_mechanisms() {
        let mut out = Vec::new();
        encode_auth_sasl(&mut out, &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
        let (msg, _) = decode_backend(&out, MAX).unwrap().unwrap();
        let BackendMessage::Authentication(Authentication::Sasl { mechanisms }) = msg else {
            panic!("not SASL: {msg:?}")
        };
        assert_eq!(
            mechanisms.iter().collect::<Vec<_>>(),
            ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        );
        assert!(mechanisms.contains("SCRAM-SHA-256"));
        round_trip(msg);
    }

    #[test]
    fn parameter_status_round_trips() {
        round_trip(BackendMessage::ParameterStatus {
            name: "server_version",
            value: "15.19",
        });
    }

    #[test]
    fn backend_key_data_round_trips() {
        round_trip(BackendMessage::BackendKeyData {
            process_id: 1234,
            secret_key: -99,
        });
    }

    #[test]
    fn ready_for_query_round_trips() {
        round_trip(BackendMessage::ReadyForQuery { status: b'T' });
    }

    #[test]
    fn error_and_notice_round_trip() {
        let fields = ErrorFields {
            severity: "ERROR",
            code: "42501",
            message: "permission denied",
            detail: Some("detail"),
            hint: Some("hint"),
        };
        round_trip(BackendMessage::ErrorResponse(fields));
        round_trip(BackendMessage::NoticeResponse(ErrorFields {
            detail: None,
            ..fields
        }));
    }

    #[test]
    fn command_complete_round_trips() {
        round_trip(BackendMessage::CommandComplete { tag: "INSERT 0 3" });
    }

    #[test]
    fn copy_responses_round_trip() {
        let c = CopyResponse {
            format: 0,
            columns: 2,
        };
        round_trip(BackendMessage::CopyInResponse(c));
        round_trip(BackendMessage::CopyOutResponse(c));
        round_trip(BackendMessage::CopyBothResponse(CopyResponse {
            format: 1,
            columns: 0,
        }));
    }

    #[test]
    fn other_round_trips() {
        round_trip(BackendMessage::Other {
            tag: b'D',
            body: &[0, 1, 0, 0, 0, 1, b'5'],
        });
    }

    #[test]
    fn rows_from_tags() {
        assert_eq!(rows_from_tag("SELECT 5"), Some(5));
        assert_eq!(rows_from_tag("INSERT 0 3"), Some(3));
        assert_eq!(rows_from_tag("UPDATE 7"), Some(7));
        assert_eq!(rows_from_tag("DELETE 0"), Some(0));
        assert_eq!(rows_from_tag("COPY 12"), Some(12));
        assert_eq!(rows_from_tag("MERGE 2"), Some(2));
        assert_eq!(rows_from_tag("CREATE TABLE"), None);
        assert_eq!(rows_from_tag("SELECT"), None);
        assert_eq!(rows_from_tag(""), None);
    }
}

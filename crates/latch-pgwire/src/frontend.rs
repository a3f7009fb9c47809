//! Messages a client sends after startup, decoded as borrowed views of the input buffer.

use crate::error::ProtocolError;
use crate::reader::{Reader, frame, header, put_cstr, put_i16, put_i32, split_frame};

/// What a Describe or Close refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    fn from_byte(tag: u8, b: u8) -> Result<Self, ProtocolError> {
        match b {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            _ => Err(ProtocolError::malformed(
                tag,
                "target is neither `S` nor `P`",
            )),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// The parameter type OIDs of a Parse, kept as raw big-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamTypes<'a>(&'a [u8]);

impl<'a> ParamTypes<'a> {
    /// Wraps raw big-endian OIDs; the length must be a multiple of 4 (extra bytes are ignored).
    pub fn from_raw(raw: &'a [u8]) -> Self {
        ParamTypes(raw)
    }

    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() < 4
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_be_bytes))
    }
}

/// A client message after startup, borrowing from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// `Q`: simple query; may hold several statements.
    Query { sql: &'a str },
    /// `P`: prepare `sql` as statement `name` (empty: the unnamed statement).
    Parse {
        name: &'a str,
        sql: &'a str,
        param_types: ParamTypes<'a>,
    },
    /// `B`: bind `statement` into `portal`; parameter values are skipped, their count kept.
    Bind {
        portal: &'a str,
        statement: &'a str,
        param_count: u16,
    },
    /// `D`: describe a statement or portal.
    Describe { target: Target, name: &'a str },
    /// `E`: run `portal`, returning at most `max_rows` rows (0: all).
    Execute { portal: &'a str, max_rows: i32 },
    /// `C`: close a statement or portal.
    Close { target: Target, name: &'a str },
    /// `S`: end of an extended-protocol batch.
    Sync,
    /// `H`: ask the server to send what it has.
    Flush,
    /// `d`: COPY data.
    CopyData(&'a [u8]),
    /// `c`: end of COPY data.
    CopyDone,
    /// `f`: the client aborts a COPY.
    CopyFail { message: &'a str },
    /// `X`: the client is leaving.
    Terminate,
    /// `p`: PasswordMessage, SASLInitialResponse or SASLResponse; which one depends on the
    /// authentication exchange, so the body stays raw (see [`password`],
    /// [`sasl_initial_response`]).
    AuthResponse(&'a [u8]),
    /// `F`: fast-path function call.
    FunctionCall { function: u32, args: &'a [u8] },
    /// Any other type byte; relayed as is.
    Unknown { tag: u8, body: &'a [u8] },
}

/// Reads a frame header without decoding the body: `(tag, total length with the tag)`.
/// `Ok(None)` when fewer than 5 bytes are there; an error when the length is invalid or above
/// `max_len`. This is what a relay uses to find message boundaries.
pub fn frame_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    header(buf, max_len)
}

/// Decodes the message at the start of `buf`. `Ok(None)` when it is not complete yet.
pub fn decode_frontend(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(FrontendMessage<'_>, usize)>, ProtocolError> {
    let Some((tag, body, total)) = split_frame(buf, max_len)? else {
        return Ok(None);
    };
    Ok(Some((decode_body(tag, body)?, total)))
}

/// Decodes a message body whose frame was already split off.
pub fn decode_body(tag: u8, body: &[u8]) -> Result<FrontendMessage<'_>, ProtocolError> {
    let mut r = Reader::new(tag, body);
    let msg = match tag {
        b'Q' => FrontendMessage::Query { sql: r.cstr()? },
        b'P' => {
            let name = r.cstr()?;
            let sql = r.cstr()?;
            let n = r.count()?;
            let param_types = ParamTypes(r.bytes(usize::from(n) * 4)?);
            FrontendMessage::Parse {
                name,
                sql,
                param_types,
            }
        }
        b'B' => {
            let portal = r.cstr()?;
            let statement = r.cstr()?;
            let formats = r.count()?;
            r.bytes(usize::from(formats) * 2)?;
            let param_count = r.count()?;
            for _ in 0..param_count {
                let len = r.i32()?;
                if len >= 0 {
                    r.bytes(usize::try_from(len).unwrap_or(usize::MAX))?;
                } else if len != -1 {
                    return Err(ProtocolError::malformed(tag, "negative parameter length"));
                }
            }
            let results = r.count()?;
            r.bytes(usize::from(results) * 2)?;
            FrontendMessage::Bind {
                portal,
                statement,
                param_count,
            }
        }
        b'D' => {
            let target = Target::from_byte(tag, r.u8()?)?;
            FrontendMessage::Describe {
                target,
                name: r.cstr()?,
            }
        }
        b'E' => FrontendMessage::Execute {
            portal: r.cstr()?,
            max_rows: r.i32()?,
        },
        b'C' => {
            let target = Target::from_byte(tag, r.u8()?)?;
            FrontendMessage::Close {
                target,
                name: r.cstr()?,
            }
        }
        b'S' => FrontendMessage::Sync,
        b'H' => FrontendMessage::Flush,
        b'd' => return Ok(FrontendMessage::CopyData(body)),
        b'c' => FrontendMessage::CopyDone,
        b'f' => FrontendMessage::CopyFail { message: r.cstr()? },
        b'X' => FrontendMessage::Terminate,
        b'p' => return Ok(FrontendMessage::AuthResponse(body)),
        b'F' => {
            let function = u32::from_be_bytes(r.array::<4>()?);
            return Ok(FrontendMessage::FunctionCall {
                function,
                args: r.rest(),
            });
        }
        _ => return Ok(FrontendMessage::Unknown { tag, body }),
    };
    r.finish()?;
    Ok(msg)
}

/// The password in a PasswordMessage body (cleartext, or `md5…`).
pub fn password(body: &[u8]) -> Result<&str, ProtocolError> {
    let mut r = Reader::new(b'p', body);
    let pw = r.cstr()?;
    r.finish()?;
    Ok(pw)
}

/// The mechanism and initial data of a SASLInitialResponse body. The data is `None` when the
/// client sent length -1.
pub fn sasl_initial_response(body: &[u8]) -> Result<(&str, Option<&[u8]>), ProtocolError> {
    let mut r = Reader::new(b'p', body);
    let mechanism = r.cstr()?;
    let len = r.i32()?;
    let data = if len == -1 {
        None
    } else {
        let n = usize::try_from(len)
            .map_err(|_| ProtocolError::malformed(b'p', "negative SASL data length"))?;
        Some(r.bytes(n)?)
    };
    r.finish()?;
    Ok((mechanism, data))
}

impl FrontendMessage<'_> {
    /// The type byte of this message.
    pub fn tag(&self) -> u8 {
        match self {
            FrontendMessage::Query { .. } => b'Q',
            FrontendMessage::Parse { .. } => b'P',
            FrontendMessage::Bind { .. } => b'B',
            FrontendMessage::Describe { .. } => b'D',
            FrontendMessage::Execute { .. } => b'E',
            FrontendMessage::Close { .. } => b'C',
            FrontendMessage::Sync => b'S',
            FrontendMessage::Flush => b'H',
            FrontendMessage::CopyData(_) => b'd',
            FrontendMessage::CopyDone => b'c',
            FrontendMessage::CopyFail { .. } => b'f',
            FrontendMessage::Terminate => b'X',
            FrontendMessage::AuthResponse(_) => b'p',
            FrontendMessage::FunctionCall { .. } => b'F',
            FrontendMessage::Unknown { tag, .. } => *tag,
        }
    }

    /// Writes the message. A Bind is written with `param_count` NULL parameters and no format
    /// codes, since its values are not kept.
    pub fn encode(&self, out: &mut Vec<u8>) {
        frame(out, self.tag(), |o| match self {
            FrontendMessage::Query { sql } => put_cstr(o, sql.as_bytes()),
            FrontendMessage::Parse {
                name,
                sql,
                param_types,
            } => {
                put_cstr(o, name.as_bytes());
                put_cstr(o, sql.as_bytes());
                put_i16(o, i16::try_from(param_types.len()).unwrap_or(i16::MAX));
                o.extend_from_slice(param_types.0.get(..param_types.len() * 4).unwrap_or(&[]));
            }
            FrontendMessage::Bind {
                portal,
                statement,
                param_count,
            } => {
                put_cstr(o, portal.as_bytes());
                put_cstr(o, statement.as_bytes());
                put_i16(o, 0);
                put_i16(o, i16::try_from(*param_count).unwrap_or(i16::MAX));
                for _ in 0..*param_count {
                    put_i32(o, -1);
                }
                put_i16(o, 0);
            }
            FrontendMessage::Describe { target, name }
            | FrontendMessage::Close { target, name } => {
                o.push(target.byte());
                put_cstr(o, name.as_bytes());
            }
            FrontendMessage::Execute { portal, max_rows } => {
                put_cstr(o, portal.as_bytes());
                put_i32(o, *max_rows);
            }
            FrontendMessage::Sync
            | FrontendMessage::Flush
            | FrontendMessage::CopyDone
            | FrontendMessage::Terminate => {}
            FrontendMessage::CopyData(data) => o.extend_from_slice(data),
            FrontendMessage::CopyFail { message } => put_cstr(o, message.as_bytes()),
            FrontendMessage::AuthResponse(body) => o.extend_from_slice(body),
            FrontendMessage::FunctionCall { function, args } => {
                o.extend_from_slice(&function.to_be_bytes());
                o.extend_from_slice(args);
            }
            FrontendMessage::Unknown { body, .. } => o.extend_from_slice(body),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn round_trip(msg: FrontendMessage<'_>) {
        let mut out = Vec::new();
        msg.encode(&mut out);
        let (back, used) = decode_frontend(&out, MAX).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, out.len());
        for cut in 0..out.len() {
            assert_eq!(decode_frontend(&out[..cut], MAX), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn query_round_trips() {
        round_trip(FrontendMessage::Query {
            sql: "select 1; select 2",
        });
    }

    #[test]
    fn parse_round_trips() {
        let oids = [0, 0, 0, 23, 0, 0, 0, 25];
        let msg = FrontendMessage::Parse {
            name: "s1",
            sql: "select $1::int, $2",
            param_types: ParamTypes::from_raw(&oids),
        };
        round_trip(msg);
        let FrontendMessage::Parse { param_types, .. } = msg else {
            unreachable!()
        };
        assert_eq!(param_types.iter().collect::<Vec<_>>(), vec![23, 25]);
    }

    #[test]
    fn bind_round_trips() {
        round_trip(FrontendMessage::Bind {
            portal: "",
            statement: "s1",
            param_count: 2,
        });
    }

    #[test]
    fn bind_skips_parameter_values() {
        let mut out = Vec::new();
        frame(&mut out, b'B', |o| {
            put_cstr(o, b"p");
            put_cstr(o, b"s");
            put_i16(o, 1);
            put_i16(o, 1);
            put_i16(o, 2);
            put_i32(o, 3);
            o.extend_from_slice(b"abc");
            put_i32(o, -1);
            put_i16(o, 1);
            put_i16(o, 0);
        });
        let (msg, _) = decode_frontend(&out, MAX).unwrap().unwrap();
        assert_eq!(
            msg,
            FrontendMessage::Bind {
                portal: "p",
                statement: "s",
                param_count: 2
            }
        );
    }

    #[test]
    fn describe_round_trips() {
        round_trip(FrontendMessage::Describe {
            target: Target::Statement,
            name: "s1",
        });
        round_trip(FrontendMessage::Describe {
            target: Target::Portal,
            name: "",
        });
    }

    #[test]
    fn execute_round_trips() {
        round_trip(FrontendMessage::Execute {
            portal: "",
            max_rows: 100,
        });
    }

    #[test]
    fn close_round_trips() {
        round_trip(FrontendMessage::Close {
            target: Target::Portal,
            name: "p",
        });
    }

    #[test]
    fn sync_flush_copydone_terminate_round_trip() {
        round_trip(FrontendMessage::Sync);
        round_trip(FrontendMessage::Flush);
        round_trip(FrontendMessage::CopyDone);
        round_trip(FrontendMessage::Terminate);
    }

    #[test]
    fn copy_data_round_trips() {
        round_trip(FrontendMessage::CopyData(b"1\tone\n"));
    }

    #[test]
    fn copy_fail_round_trips() {
        round_trip(FrontendMessage::CopyFail {
            message: "aborted by user",
        });
    }

    #[test]
    fn auth_response_round_trips_and_reads_password() {
        round_trip(FrontendMessage::AuthResponse(b"secret\0"));
        assert_eq!(password(b"secret\0"), Ok("secret"));
        assert!(password(b"secret").is_err());
    }

    #[test]
    fn sasl_initial_response_reads_mechanism_and_data() {
        let mut body = Vec::new();
        put_cstr(&mut body, b"SCRAM-SHA-256");
        put_i32(&mut body, 3);
        body.extend_from_slice(b"n,,");
        assert_eq!(
            sasl_initial_response(&body),
            Ok(("SCRAM-SHA-256", Some(&b"n,,"[..])))
        );
    }

    #[test]
    fn function_call_round_trips() {
        round_trip(FrontendMessage::FunctionCall {
            function: 1598,
            args: &[0, 0, 0, 0, 0, 1],
        });
    }

    #[test]
    fn unknown_round_trips() {
        round_trip(FrontendMessage::Unknown {
            tag: b'z',
            body: b"opaque",
        });
    }

    #[test]
    fn oversized_message_is_refused_from_its_header() {
        let err = decode_frontend(&[b'Q', 0, 1, 0, 0], 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message `Q` of 65537 bytes exceeds the limit of 1024 bytes"
        );
    }

    #[test]
    fn negative_length_is_refused() {
        let err = decode_frontend(&[b'Q', 0xff, 0xff, 0xff, 0xff], 1024).unwrap_err();
        assert_eq!(err.to_string(), "invalid length -1 in message `Q`");
    }

    #[test]
    fn query_without_terminator_is_malformed() {
        let err = decode_frontend(&[b'Q', 0, 0, 0, 5, b'x'], 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed message `Q`: string without nul terminator"
        );
    }
}

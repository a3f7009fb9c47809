//! Encoders for the messages the gateway writes itself. Messages it decodes also have an
//! `encode` method ([`crate::FrontendMessage::encode`], [`crate::BackendMessage::encode`],
//! [`crate::Startup::encode`]); these functions are the short names for the common ones.

use crate::backend::{BackendMessage, put_field};
use crate::frontend::FrontendMessage;
use crate::reader::{frame, put_cstr, put_i32};
use crate::startup::Startup;

/// Severity of an ErrorResponse or NoticeResponse written by latch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The session ends after this error.
    Fatal,
    /// The statement failed; the session goes on.
    Error,
    Warning,
    Notice,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "FATAL",
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Info => "INFO",
        }
    }
}

/// An error or notice written by latch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    pub severity: Severity,
    /// SQLSTATE, five characters.
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

impl<'a> ErrorResponse<'a> {
    pub fn new(severity: Severity, code: &'a str, message: &'a str) -> Self {
        ErrorResponse {
            severity,
            code,
            message,
            detail: None,
            hint: None,
        }
    }

    /// Writes it as an ErrorResponse (`E`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.write(out, b'E');
    }

    /// Writes it as a NoticeResponse (`N`).
    pub fn encode_notice(&self, out: &mut Vec<u8>) {
        self.write(out, b'N');
    }

    fn write(&self, out: &mut Vec<u8>, tag: u8) {
        frame(out, tag, |o| {
            put_field(o, b'S', self.severity.as_str());
            put_field(o, b'V', self.severity.as_str());
            put_field(o, b'C', self.code);
            put_field(o, b'M', self.message);
            if let Some(d) = self.detail {
                put_field(o, b'D', d);
            }
            if let Some(h) = self.hint {
                put_field(o, b'H', h);
            }
            o.push(0);
        });
    }
}

pub fn authentication_ok(out: &mut Vec<u8>) {
    BackendMessage::Authentication(crate::Authentication::Ok).encode(out);
}

pub fn authentication_cleartext_password(out: &mut Vec<u8>) {
    BackendMessage::Authentication(crate::Authentication::CleartextPassword).encode(out);
}

pub fn authentication_md5_password(out: &mut Vec<u8>, salt: [u8; 4]) {
    BackendMessage::Authentication(crate::Authentication::Md5Password { salt }).encode(out);
}

pub fn authentication_sasl(out: &mut Vec<u8>, mechanisms: &[&str]) {
    crate::backend::encode_auth_sasl(out, mechanisms);
}

pub fn authentication_sasl_continue(out: &mut Vec<u8>, data: &[u8]) {
    BackendMessage::Authentication(crate::Authentication::SaslContinue(data)).encode(out);
}

pub fn authentication_sasl_final(out: &mut Vec<u8>, data: &[u8]) {
    BackendMessage::Authentication(crate::Authentication::SaslFinal(data)).encode(out);
}

pub fn parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    BackendMessage::ParameterStatus { name, value }.encode(out);
}

pub fn backend_key_data(out: &mut Vec<u8>, process_id: i32, secret_key: i32) {
    BackendMessage::BackendKeyData {
        process_id,
        secret_key,
    }
    .encode(out);
}

pub fn ready_for_query(out: &mut Vec<u8>, status: u8) {
    BackendMessage::ReadyForQuery { status }.encode(out);
}

pub fn command_complete(out: &mut Vec<u8>, tag: &str) {
    BackendMessage::CommandComplete { tag }.encode(out);
}

/// A protocol 3.0 StartupMessage with these parameters.
pub fn startup_message(out: &mut Vec<u8>, params: &[(&str, &str)]) {
    crate::startup::encode_startup_message(out, params);
}

pub fn ssl_request(out: &mut Vec<u8>) {
    Startup::SslRequest.encode(out);
}

pub fn cancel_request(out: &mut Vec<u8>, process_id: i32, secret_key: i32) {
    Startup::Cancel {
        process_id,
        secret_key,
    }
    .encode(out);
}

/// A PasswordMessage carrying a cleartext or `md5…` password.
pub fn password_message(out: &mut Vec<u8>, password: &str) {
    frame(out, b'p', |o| put_cstr(o, password.as_bytes()));
}

pub fn sasl_initial_response(out: &mut Vec<u8>, mechanism: &str, data: &[u8]) {
    frame(out, b'p', |o| {
        put_cstr(o, mechanism.as_bytes());
        put_i32(o, i32::try_from(data.len()).unwrap_or(i32::MAX));
        o.extend_from_slice(data);
    });
}

pub fn sasl_response(out: &mut Vec<u8>, data: &[u8]) {
    FrontendMessage::AuthResponse(data).encode(out);
}

pub fn query(out: &mut Vec<u8>, sql: &str) {
    FrontendMessage::Query { sql }.encode(out);
}

pub fn sync(out: &mut Vec<u8>) {
    FrontendMessage::Sync.encode(out);
}

pub fn terminate(out: &mut Vec<u8>) {
    FrontendMessage::Terminate.encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorFields, decode_backend, decode_frontend, decode_startup};

    #[test]
    fn error_response_decodes_with_all_fields() {
        let mut out = Vec::new();
        ErrorResponse {
            severity: Severity::Fatal,
            code: "57P01",
            message: "access ended",
            detail: Some("d"),
            hint: Some("h"),
        }
        .encode(&mut out);
        let (msg, _) = decode_backend(&out, 1024).unwrap().unwrap();
        assert_eq!(
            msg,
            BackendMessage::ErrorResponse(ErrorFields {
                severity: "FATAL",
                code: "57P01",
                message: "access ended",
                detail: Some("d"),
                hint: Some("h"),
            })
        );
    }

    #[test]
    fn notice_response_decodes() {
        let mut out = Vec::new();
        ErrorResponse::new(Severity::Notice, "00000", "hello").encode_notice(&mut out);
        let (msg, _) = decode_backend(&out, 1024).unwrap().unwrap();
        assert!(matches!(msg, BackendMessage::NoticeResponse(f) if f.message == "hello"));
    }

    #[test]
    fn frontend_encoders_decode() {
        let mut out = Vec::new();
        password_message(&mut out, "pw");
        let (msg, n) = decode_frontend(&out, 1024).unwrap().unwrap();
        assert_eq!(
            crate::frontend::password(match msg {
                FrontendMessage::AuthResponse(b) => b,
                other => panic!("{other:?}"),
            }),
            Ok("pw")
        );
        out.drain(..n);
        sasl_initial_response(&mut out, "SCRAM-SHA-256", b"n,,n=,r=x");
        let (msg, n) = decode_frontend(&out, 1024).unwrap().unwrap();
        let FrontendMessage::AuthResponse(body) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(
            crate::frontend::sasl_initial_response(body),
            Ok(("SCRAM-SHA-256", Some(&b"n,,n=,r=x"[..])))
        );
        out.drain(..n);
        query(&mut out, "select 1");
        sync(&mut out);
        terminate(&mut out);
        let (q, n) = decode_frontend(&out, 1024).unwrap().unwrap();
        assert_eq!(q, FrontendMessage::Query { sql: "select 1" });
        out.drain(..n);
        let (s, n) = decode_frontend(&out, 1024).unwrap().unwrap();
        assert_eq!(s, FrontendMessage::Sync);
        out.drain(..n);
        assert_eq!(
            decode_frontend(&out, 1024).unwrap().unwrap().0,
            FrontendMessage::Terminate
        );
    }

    #[test]
    fn startup_encoders_decode() {
        let mut out = Vec::new();
        ssl_request(&mut out);
        assert_eq!(
            decode_startup(&out, 100).unwrap().unwrap().0,
            Startup::SslRequest
        );
        out.clear();
        cancel_request(&mut out, 1, 2);
        assert_eq!(
            decode_startup(&out, 100).unwrap().unwrap().0,
            Startup::Cancel {
                process_id: 1,
                secret_key: 2
            }
        );
    }

    #[test]
    fn backend_encoders_decode() {
        let mut out = Vec::new();
        authentication_ok(&mut out);
        authentication_cleartext_password(&mut out);
        authentication_md5_password(&mut out, [9, 9, 9, 9]);
        authentication_sasl(&mut out, &["SCRAM-SHA-256"]);
        authentication_sasl_continue(&mut out, b"c");
        authentication_sasl_final(&mut out, b"f");
        parameter_status(&mut out, "a", "b");
        backend_key_data(&mut out, 1, 2);
        ready_for_query(&mut out, b'I');
        command_complete(&mut out, "SELECT 1");
        let mut tags = Vec::new();
        let mut rest = &out[..];
        while let Some((msg, n)) = decode_backend(rest, 1024).unwrap() {
            tags.push(msg.tag());
            rest = &rest[n..];
        }
        assert_eq!(tags, b"RRRRRRSKZC");
    }
}

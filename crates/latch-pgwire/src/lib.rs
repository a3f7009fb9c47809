//! PostgreSQL v3 wire protocol codec for the latch gateway, sans-IO.
//!
//! Decoding borrows from the caller's buffer and never allocates: every decoder takes the bytes
//! read so far and returns `Ok(None)` when a complete message is not there yet, or the message
//! and how many bytes it used. The length in a message header is checked against the caller's
//! maximum before anything is buffered, so an oversized message is refused as soon as its header
//! arrives.
//!
//! - [`startup`]: the first packet of a connection (SSLRequest, GSSENCRequest, CancelRequest,
//!   StartupMessage).
//! - [`frontend`]: what a client sends after startup (Query, Parse, Bind, Execute, …).
//! - [`backend`]: what a server sends that a relay must understand (authentication,
//!   ReadyForQuery, errors, CommandComplete, …).
//! - [`encode`]: writing messages into a `Vec<u8>`.
//! - [`scram`] and [`md5`]: password authentication, client and server side.
//!
//! **Architecture Invariant:** no decoder panics or allocates, whatever the input; every slice
//! access goes through `get`.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod backend;
pub mod encode;
mod error;
pub mod frontend;
pub mod md5;
mod reader;
pub mod scram;
pub mod startup;

pub use backend::{
    Authentication, BackendMessage, CopyResponse, ErrorFields, SaslMechanisms, decode_backend,
    rows_from_tag,
};
pub use encode::{ErrorResponse, Severity};
pub use error::{ProtocolError, Tag};
pub use frontend::{FrontendMessage, ParamTypes, Target, decode_frontend, frame_header};
pub use startup::{
    CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_STARTUP_LEN, PROTOCOL_3_0, SSL_REQUEST_CODE,
    Startup, StartupParams, decode_startup,
};

/// Transaction status byte of ReadyForQuery: idle.
pub const TX_IDLE: u8 = b'I';
/// Transaction status byte of ReadyForQuery: in a transaction block.
pub const TX_IN_BLOCK: u8 = b'T';
/// Transaction status byte of ReadyForQuery: in a failed transaction block.
pub const TX_FAILED: u8 = b'E';

//! Decoding errors, shared by the startup, frontend and backend decoders.

use std::fmt;

/// A message type byte, displayed as a character when printable (`Q`) and as `\xNN` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag(pub u8);

impl Tag {
    /// The startup packet has no type byte; errors about it use this pseudo tag.
    pub const STARTUP: Tag = Tag(0);
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("startup")
        } else if self.0.is_ascii_graphic() {
            write!(f, "{}", char::from(self.0))
        } else {
            write!(f, "\\x{:02x}", self.0)
        }
    }
}

/// Why bytes are not a valid protocol message. The text is shown to the peer (as the message of
/// a FATAL ErrorResponse), so it says what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The header announces more bytes than the caller accepts; nothing was buffered.
    #[error("message `{tag}` of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { tag: Tag, len: usize, max: usize },
    /// The length field is smaller than the fixed part of the message.
    #[error("invalid length {len} in message `{tag}`")]
    BadLength { tag: Tag, len: i64 },
    /// The startup packet names a protocol version other than 3.0.
    #[error(
        "unsupported frontend protocol {major}.{minor}: latch speaks protocol 3.0 (use a client from PostgreSQL 7.4 or later)"
    )]
    UnsupportedVersion { major: u16, minor: u16 },
    /// The body does not have the shape its type requires.
    #[error("malformed message `{tag}`: {what}")]
    Malformed { tag: Tag, what: &'static str },
}

impl ProtocolError {
    pub(crate) fn malformed(tag: u8, what: &'static str) -> Self {
        ProtocolError::Malformed {
            tag: Tag(tag),
            what,
        }
    }
}

//! A cursor over one message body; every read is bounds-checked and reports which message was
//! malformed.

use crate::error::ProtocolError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    tag: u8,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(tag: u8, buf: &'a [u8]) -> Self {
        Reader { buf, tag }
    }

    fn short(&self) -> ProtocolError {
        ProtocolError::malformed(self.tag, "message ends early")
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or_else(|| self.short())?;
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        let (&b, tail) = self.buf.split_first().ok_or_else(|| self.short())?;
        self.buf = tail;
        Ok(b)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.array::<2>()?;
        Ok(i16::from_be_bytes(b))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.array::<4>()?;
        Ok(i32::from_be_bytes(b))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or_else(|| self.short())?;
        self.buf = tail;
        Ok(*head)
    }

    /// A count that must not be negative (`i16` in the protocol).
    pub(crate) fn count(&mut self) -> Result<u16, ProtocolError> {
        u16::try_from(self.i16()?).map_err(|_| ProtocolError::malformed(self.tag, "negative count"))
    }

    /// A nul-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, ProtocolError> {
        let raw = self.cbytes()?;
        std::str::from_utf8(raw)
            .map_err(|_| ProtocolError::malformed(self.tag, "string is not valid UTF-8"))
    }

    /// Nul-terminated bytes, without the terminator.
    pub(crate) fn cbytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let end =
            self.buf.iter().position(|&b| b == 0).ok_or_else(|| {
                ProtocolError::malformed(self.tag, "string without nul terminator")
            })?;
        let raw = self.bytes(end)?;
        self.bytes(1)?;
        Ok(raw)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails when bytes are left over after the last field.
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::malformed(
                self.tag,
                "trailing bytes after the last field",
            ))
        }
    }
}

/// Writes a message: tag, a length placeholder, the body, then patches the length.
pub(crate) fn frame(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    frame_untagged(out, body);
}

/// Writes a startup packet: like [`frame`] without the type byte.
pub(crate) fn frame_untagged(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = i32::try_from(out.len() - start).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

pub(crate) fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads a frame header: `(tag, total length including the tag)`, checked against `max_len`.
/// `Ok(None)` when fewer than 5 bytes are there.
pub(crate) fn header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    let Some((&tag, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some(len) = rest.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*len);
    if len < 4 {
        return Err(ProtocolError::BadLength {
            tag: crate::Tag(tag),
            len: i64::from(len),
        });
    }
    let total = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1);
    if total > max_len {
        return Err(ProtocolError::TooLarge {
            tag: crate::Tag(tag),
            len: total,
            max: max_len,
        });
    }
    Ok(Some((tag, total)))
}

/// `(tag, body, total length with the tag)`.
pub(crate) type Frame<'a> = (u8, &'a [u8], usize);

/// Splits one complete frame off `buf`: `(tag, body, total)`.
pub(crate) fn split_frame(buf: &[u8], max_len: usize) -> Result<Option<Frame<'_>>, ProtocolError> {
    let Some((tag, total)) = header(buf, max_len)? else {
        return Ok(None);
    };
    match buf.get(5..total) {
        Some(body) => Ok(Some((tag, body, total))),
        None => Ok(None),
    }
}

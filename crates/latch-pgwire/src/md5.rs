//! The `md5` password method: `"md5" + hex(md5(hex(md5(password + user)) + salt))`.

use md5::{Digest, Md5};

/// The PasswordMessage content answering an AuthenticationMD5Password with `salt`.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let inner = hex(&Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize());
    let outer = Md5::new()
        .chain_update(inner.as_bytes())
        .chain_update(salt)
        .finalize();
    format!("md5{}", hex(&outer))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(
            DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        ));
        s.push(char::from(
            DIGITS.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // Computed independently with Python's hashlib:
        // "md5" + md5(md5(b"secretalice").hexdigest() + b"\x01\x02\x03\x04").hexdigest()
        assert_eq!(md5_password("alice", "secret", [1, 2, 3, 4]), KNOWN);
    }

    const KNOWN: &str = include_str!("../testdata/md5_alice_secret_01020304.txt");
}

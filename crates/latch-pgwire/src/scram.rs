//! SCRAM-SHA-256 (RFC 5802, RFC 7677), both sides; the server also offers SCRAM-SHA-256-PLUS
//! with `tls-server-end-point` channel binding (RFC 5929) over TLS.
//!
//! - [`ScramClient`]: the gateway authenticating to the upstream with a password from config.
//! - [`ScramServer`]: the gateway authenticating a client against the [`ScramSecret`]s it
//!   holds (a latch session credential's, stored when it was issued): the plaintext is never
//!   needed, and several secrets sharing one salt can be tried against one proof.
//!
//! Passwords are used as UTF-8 bytes without SASLprep; PostgreSQL does the same for passwords
//! that SASLprep would reject, and for ASCII passwords the two agree.
//!
//! Cost: deriving the salted password is `iterations` HMAC-SHA-256 rounds (4096 is about 2 ms
//! in a release build, 10× that in debug), paid once per connection by whichever side holds the
//! plaintext. A client given a [`ScramKeyCache`] pays it once per password and salt instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SASL mechanism name.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// The mechanism with channel binding: the proof also covers the TLS server certificate the
/// client saw, so a man in the middle with another certificate cannot relay the exchange.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The one channel binding type PostgreSQL (and latch) support.
const TLS_SERVER_END_POINT: &str = "tls-server-end-point";
/// Iterations PostgreSQL uses by default (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// The most iterations a client accepts from a server, so a hostile server cannot make the
/// gateway spin.
pub const MAX_ITERATIONS: u32 = 1_000_000;

type HmacSha256 = Hmac<Sha256>;

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error(
        "this channel binding is not offered: latch binds SCRAM logins over TLS with tls-server-end-point only; connect with channel_binding=prefer (or disable)"
    )]
    ChannelBindingUnsupported,
    #[error("SCRAM authorization identities are not supported")]
    AuthzidUnsupported,
    #[error("the server's nonce does not extend the client's")]
    NonceMismatch,
    #[error("the server asks for {0} iterations, more than the {MAX_ITERATIONS} latch accepts")]
    TooManyIterations(u32),
    #[error("password authentication failed")]
    InvalidProof,
    #[error("the server's signature does not match: it does not know the password")]
    InvalidServerSignature,
    #[error("the server refused the proof: {0}")]
    ServerError(String),
    #[error("SCRAM message out of order")]
    OutOfOrder,
    #[error("the client did not use channel binding although the server offers it (a downgrade?)")]
    ChannelBindingDowngrade,
    #[error("the channel binding does not match this connection's TLS certificate")]
    ChannelBindingMismatch,
}

/// RFC 5929's `tls-server-end-point` data for the server certificate `der`: the certificate's
/// hash, with the hash of its signature algorithm (SHA-256 for MD5 and SHA-1). `None` when that
/// names no single hash (RSA-PSS, Ed25519) or `der` is not a certificate; a server then offers
/// no channel binding.
pub fn tls_server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    /// One DER element: its tag, its contents and what follows it.
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (bytes, after) = rest.split_at_checked(n)?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let (contents, after) = rest.split_at_checked(len)?;
        Some((tag, contents, after))
    }
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, _tbs, after_tbs) = element(certificate)? else {
        return None;
    };
    let (SEQUENCE, algorithm, _) = element(after_tbs)? else {
        return None;
    };
    let (OID, oid, _) = element(algorithm)? else {
        return None;
    };
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    enum Hash {
        Sha256,
        Sha384,
        Sha512,
    }
    let hash = match oid.split_last()? {
        // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption
        (4 | 5 | 11, prefix) if prefix == RSA => Hash::Sha256,
        (12, prefix) if prefix == RSA => Hash::Sha384,
        (13, prefix) if prefix == RSA => Hash::Sha512,
        _ if oid == ECDSA_SHA1 => Hash::Sha256,
        (2, prefix) if prefix == ECDSA_SHA2 => Hash::Sha256,
        (3, prefix) if prefix == ECDSA_SHA2 => Hash::Sha384,
        (4, prefix) if prefix == ECDSA_SHA2 => Hash::Sha512,
        _ => return None,
    };
    Some(match hash {
        Hash::Sha256 => Sha256::digest(der).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(der).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(der).to_vec(),
    })
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

/// ClientKey and ServerKey (RFC 5802 §3): the `iterations` rounds, done once for both sides.
fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
    let mut salted = salted_password(password, salt, iterations);
    let keys = (
        hmac(&salted, &[b"Client Key"]),
        hmac(&salted, &[b"Server Key"]),
    );
    salted.fill(0);
    keys
}

/// What the iterations buy a client: its two keys for one password, salt and count.
struct ClientKeys {
    /// SHA-256 of the password, so that a cache shared by mistake never answers for another.
    password_digest: [u8; 32],
    salt: Vec<u8>,
    iterations: u32,
    client_key: [u8; 32],
    server_key: [u8; 32],
}

impl ClientKeys {
    fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let (client_key, server_key) = derive_keys(password, salt, iterations);
        ClientKeys {
            password_digest: Sha256::digest(password).into(),
            salt: salt.to_vec(),
            iterations,
            client_key,
            server_key,
        }
    }
}

impl Drop for ClientKeys {
    fn drop(&mut self) {
        self.client_key.fill(0);
        self.server_key.fill(0);
    }
}

/// The keys of the last SCRAM login made with one password, for the next login to reuse.
///
/// A server keeps one salt and iteration count per login until the password is set again, so
/// every connection after the first skips the key derivation (`iterations` HMAC rounds, about
/// a millisecond of CPU at PostgreSQL's default), as pgbouncer does. A login that meets another
/// salt or count, or uses another password, derives its keys and replaces the entry. The keys
/// let their holder log in to that server as that login, as the password does: keep the cache
/// where the password is kept. Clones share the entry.
#[derive(Clone, Default)]
pub struct ScramKeyCache {
    last: Arc<Mutex<Option<ClientKeys>>>,
    derivations: Arc<AtomicU64>,
}

impl ScramKeyCache {
    /// How many times a login through this cache derived its keys (the rest reused them).
    pub fn derivations(&self) -> u64 {
        self.derivations.load(Ordering::Relaxed)
    }

    fn keys(&self, password: &[u8], salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
        let digest: [u8; 32] = Sha256::digest(password).into();
        {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = last.as_ref()
                && k.iterations == iterations
                && k.salt == salt
                && bool::from(k.password_digest.ct_eq(&digest))
            {
                return (k.client_key, k.server_key);
            }
        }
        // Derived outside the lock: a burst of first logins derives in parallel, not in turn.
        let keys = ClientKeys::derive(password, salt, iterations);
        self.derivations.fetch_add(1, Ordering::Relaxed);
        let pair = (keys.client_key, keys.server_key);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(keys);
        pair
    }
}

impl std::fmt::Debug for ScramKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramKeyCache")
            .field("derivations", &self.derivations())
            .finish_non_exhaustive()
    }
}

fn random_nonce() -> String {
    let mut raw = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut raw);
    B64.encode(raw)
}

/// What a server stores for a password: enough to verify a proof, not the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramSecret {
    /// Derives the secret from a plaintext password (costs `iterations` HMAC rounds).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let (client_key, server_key) = derive_keys(password.as_bytes(), salt, iterations);
        ScramSecret {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key,
        }
    }

    /// Derives the secret with a fresh random 16-byte salt.
    pub fn derive_random_salt(password: &str, iterations: u32) -> Self {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::derive(password, &salt, iterations)
    }
}

/// Splits `k=value` attributes separated by commas.
fn attr(part: Option<&str>, key: char) -> Result<&str, ScramError> {
    let part = part.ok_or(ScramError::Malformed("missing attribute"))?;
    let mut chars = part.chars();
    if chars.next() != Some(key) || chars.next() != Some('=') {
        return Err(ScramError::Malformed("unexpected attribute"));
    }
    Ok(part.get(2..).unwrap_or(""))
}

fn utf8(msg: &[u8]) -> Result<&str, ScramError> {
    std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))
}

enum ClientState {
    Initial,
    SentFinal { server_signature: [u8; 32] },
    Done,
}

/// The client side. Send [`ScramClient::client_first`] in a SASLInitialResponse, answer the
/// AuthenticationSASLContinue with [`ScramClient::handle_server_first`], and check the
/// AuthenticationSASLFinal with [`ScramClient::handle_server_final`].
pub struct ScramClient {
    password: String,
    client_first_bare: String,
    nonce: String,
    state: ClientState,
    cache: Option<ScramKeyCache>,
}

impl ScramClient {
    /// A client with a random nonce and an empty user name (PostgreSQL takes the user from the
    /// startup packet and ignores this one).
    pub fn new(password: &str) -> Self {
        Self::with_nonce("", password, &random_nonce())
    }

    /// A client with a chosen user name and nonce (for known-answer tests).
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> Self {
        ScramClient {
            password: password.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_owned(),
            state: ClientState::Initial,
            cache: None,
        }
    }

    /// Takes the keys from `cache` when it holds them for this password, salt and count, and
    /// leaves them there otherwise.
    #[must_use]
    pub fn with_cache(mut self, cache: ScramKeyCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The client-first-message: gs2 header `n,,` and the bare message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Reads the server-first-message and returns the client-final-message.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ClientState::Initial) {
            return Err(ScramError::OutOfOrder);
        }
        let server_first = utf8(msg)?;
        let mut parts = server_first.split(',');
        let nonce = attr(parts.next(), 'r')?;
        let salt = attr(parts.next(), 's')?;
        let iterations = attr(parts.next(), 'i')?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count"))?;
        if iterations == 0 {
            return Err(ScramError::Malformed("iteration count"));
        }
        if iterations > MAX_ITERATIONS {
            return Err(ScramError::TooManyIterations(iterations));
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let (client_key, server_key) = match &self.cache {
            Some(cache) => cache.keys(self.password.as_bytes(), &salt, iterations),
            None => derive_keys(self.password.as_bytes(), &salt, iterations),
        };
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac(&stored_key, &[auth_message.as_bytes()]);
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        self.state = ClientState::SentFinal {
            server_signature: hmac(&server_key, &[auth_message.as_bytes()]),
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: the server proves it knows the password too.
    pub fn handle_server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        let ClientState::SentFinal { server_signature } = self.state else {
            return Err(ScramError::OutOfOrder);
        };
        let server_final = utf8(msg)?;
        if let Some(err) = server_final.strip_prefix("e=") {
            return Err(ScramError::ServerError(err.to_owned()));
        }
        let verifier = attr(server_final.split(',').next(), 'v')?;
        let verifier = B64
            .decode(verifier)
            .map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if bool::from(verifier.as_slice().ct_eq(&server_signature)) {
            self.state = ClientState::Done;
            Ok(())
        } else {
            Err(ScramError::InvalidServerSignature)
        }
    }
}

enum ServerState {
    Initial,
    SentFirst {
        /// The `c=` the client-final-message must carry: the gs2 header and the binding data.
        binding: String,
        auth_prefix: String,
        nonce: String,
    },
    Done,
}

/// The server side. Answer the SASLInitialResponse data with
/// [`ScramServer::handle_client_first`] (send it in AuthenticationSASLContinue) and the
/// SASLResponse with [`ScramServer::handle_client_final`] (send it in AuthenticationSASLFinal,
/// then AuthenticationOk).
pub struct ScramServer {
    salt: Vec<u8>,
    iterations: u32,
    /// `(stored_key, server_key)` of each secret a proof may match.
    candidates: Vec<([u8; 32], [u8; 32])>,
    server_nonce: String,
    state: ServerState,
    matched: Option<usize>,
    /// `tls-server-end-point` data of this connection's certificate, when SCRAM-SHA-256-PLUS is
    /// offered.
    channel_binding: Option<Vec<u8>>,
    /// The client chose SCRAM-SHA-256-PLUS.
    plus: bool,
}

impl ScramServer {
    /// A server checking proofs against `secret`, with a random nonce.
    pub fn new(secret: ScramSecret) -> Self {
        Self::with_nonce(secret, &random_nonce())
    }

    /// A server with a chosen nonce (for tests).
    pub fn with_nonce(secret: ScramSecret, server_nonce: &str) -> Self {
        let mut server = Self::any_of(secret.salt, secret.iterations, Vec::new());
        server
            .candidates
            .push((secret.stored_key, secret.server_key));
        server.server_nonce = server_nonce.to_owned();
        server
    }

    /// A server accepting a proof of any one of several secrets derived with the same `salt`
    /// and `iterations` (`(stored_key, server_key)` each): the salt is sent before the server
    /// knows which secret the client holds. With none, every proof fails, after the same
    /// exchange as with some. [`ScramServer::matched`] says which one the proof matched.
    pub fn any_of(salt: Vec<u8>, iterations: u32, candidates: Vec<([u8; 32], [u8; 32])>) -> Self {
        ScramServer {
            salt,
            iterations,
            candidates,
            server_nonce: random_nonce(),
            state: ServerState::Initial,
            matched: None,
            channel_binding: None,
            plus: false,
        }
    }

    /// Offers SCRAM-SHA-256-PLUS too, bound to the TLS certificate whose
    /// [`tls_server_end_point`] data this is (only on a TLS connection).
    pub fn with_channel_binding(mut self, end_point: Option<Vec<u8>>) -> Self {
        self.channel_binding = end_point;
        self
    }

    /// The mechanisms to offer in AuthenticationSASL, preferred first.
    pub fn mechanisms(&self) -> &'static [&'static str] {
        if self.channel_binding.is_some() {
            &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
        } else {
            &[SCRAM_SHA_256]
        }
    }

    /// Takes the mechanism the client named in SASLInitialResponse; refuses one not offered.
    pub fn choose_mechanism(&mut self, mechanism: &str) -> Result<(), ScramError> {
        if !self.mechanisms().contains(&mechanism) {
            return Err(ScramError::Malformed("unsupported SASL mechanism"));
        }
        self.plus = mechanism == SCRAM_SHA_256_PLUS;
        Ok(())
    }

    /// Whether the client chose SCRAM-SHA-256-PLUS (its proof covers the TLS certificate).
    pub fn is_bound(&self) -> bool {
        self.plus
    }

    /// The index of the candidate the client's proof matched, once
    /// [`ScramServer::handle_client_final`] has succeeded.
    pub fn matched(&self) -> Option<usize> {
        self.matched
    }

    /// Reads the client-first-message; returns the server-first-message.
    pub fn handle_client_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ServerState::Initial) {
            return Err(ScramError::OutOfOrder);
        }
        let msg = utf8(msg)?;
        let (flag, rest) = msg
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        // RFC 5802 §6: `y` says the client could bind but thinks the server cannot; when the
        // server offered binding, someone removed it from the offer.
        let binding_data: &[u8] = match (flag, self.plus) {
            ("n", false) => &[],
            ("y", false) if self.channel_binding.is_none() => &[],
            ("y", false) => return Err(ScramError::ChannelBindingDowngrade),
            (f, true) if f.strip_prefix("p=") == Some(TLS_SERVER_END_POINT) => {
                self.channel_binding.as_deref().unwrap_or_default()
            }
            (f, _) if f.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
            (_, true) => {
                return Err(ScramError::Malformed(
                    "SCRAM-SHA-256-PLUS without tls-server-end-point binding",
                ));
            }
            _ => return Err(ScramError::Malformed("gs2 channel binding flag")),
        };
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        if !authzid.is_empty() {
            return Err(ScramError::AuthzidUnsupported);
        }
        let mut binding = format!("{flag},,").into_bytes();
        binding.extend_from_slice(binding_data);
        let mut parts = bare.split(',');
        let user = parts.next().ok_or(ScramError::Malformed("missing user"))?;
        if user.starts_with("m=") {
            return Err(ScramError::Malformed(
                "mandatory extensions are not supported",
            ));
        }
        attr(Some(user), 'n')?;
        let client_nonce = attr(parts.next(), 'r')?;
        if client_nonce.is_empty() || client_nonce.contains(',') {
            return Err(ScramError::Malformed("client nonce"));
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        self.state = ServerState::SentFirst {
            binding: B64.encode(binding),
            auth_prefix: format!("{bare},{server_first}"),
            nonce,
        };
        Ok(server_first.into_bytes())
    }

    /// Reads the client-final-message and checks the proof; returns the server-final-message.
    pub fn handle_client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let ServerState::SentFirst {
            binding: expected_binding,
            auth_prefix,
            nonce,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let msg = utf8(msg)?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        let mut parts = without_proof.split(',');
        let binding = attr(parts.next(), 'c')?;
        let their_nonce = attr(parts.next(), 'r')?;
        if binding != expected_binding {
            return Err(if self.plus {
                ScramError::ChannelBindingMismatch
            } else {
                ScramError::Malformed("channel binding data does not match the gs2 header")
            });
        }
        if their_nonce != nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let proof: [u8; 32] = proof.try_into().map_err(|_| ScramError::InvalidProof)?;
        let auth_message = format!("{auth_prefix},{without_proof}");
        // Every candidate is checked, whichever matches, so the time taken says nothing about
        // which one did.
        let mut matched = None;
        for (i, (stored_key, _)) in self.candidates.iter().enumerate() {
            let signature = hmac(stored_key, &[auth_message.as_bytes()]);
            let mut client_key = proof;
            for (k, s) in client_key.iter_mut().zip(signature) {
                *k ^= s;
            }
            let stored: [u8; 32] = Sha256::digest(client_key).into();
            if bool::from(stored.ct_eq(stored_key)) && matched.is_none() {
                matched = Some(i);
            }
        }
        let (_, server_key) = matched
            .and_then(|i| self.candidates.get(i))
            .ok_or(ScramError::InvalidProof)?;
        let server_signature = hmac(server_key, &[auth_message.as_bytes()]);
        self.matched = matched;
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_client_vector() {
        let mut client = ScramClient::with_nonce("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.handle_server_first(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .handle_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    /// The server side reproduces the RFC 7677 exchange.
    #[test]
    fn rfc7677_server_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::derive("pencil", &salt, 4096);
        let mut server = ScramServer::with_nonce(secret, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = server
            .handle_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        assert_eq!(
            first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = server
            .handle_client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    fn exchange(client_pw: &str, server_pw: &str) -> Result<(), ScramError> {
        let mut server = ScramServer::new(ScramSecret::derive_random_salt(server_pw, 64));
        let mut client = ScramClient::new(client_pw);
        let first = server.handle_client_first(&client.client_first())?;
        let fin = client.handle_server_first(&first)?;
        let server_final = server.handle_client_final(&fin)?;
        client.handle_server_final(&server_final)
    }

    fn exchange_cached(
        client_pw: &str,
        server: &ScramSecret,
        cache: &ScramKeyCache,
    ) -> Result<(), ScramError> {
        let mut server = ScramServer::new(server.clone());
        let mut client = ScramClient::new(client_pw).with_cache(cache.clone());
        let first = server.handle_client_first(&client.client_first())?;
        let fin = client.handle_server_first(&first)?;
        let server_final = server.handle_client_final(&fin)?;
        client.handle_server_final(&server_final)
    }

    /// Logins after the first reuse the keys; a new salt (the password set again upstream) or
    /// another password derives them afresh, and nothing stale is ever presented.
    #[test]
    fn cached_keys_serve_the_same_password_salt_and_count_only() {
        let cache = ScramKeyCache::default();
        let secret = ScramSecret::derive("s3cret", b"first salt", 64);
        for _ in 0..3 {
            exchange_cached("s3cret", &secret, &cache).unwrap();
        }
        assert_eq!(cache.derivations(), 1);

        let reset = ScramSecret::derive("s3cret", b"second salt", 64);
        exchange_cached("s3cret", &reset, &cache).unwrap();
        assert_eq!(cache.derivations(), 2);
        let more_rounds = ScramSecret::derive("s3cret", b"second salt", 65);
        exchange_cached("s3cret", &more_rounds, &cache).unwrap();
        assert_eq!(cache.derivations(), 3);

        assert_eq!(
            exchange_cached("wrong", &more_rounds, &cache),
            Err(ScramError::InvalidProof)
        );
        assert_eq!(cache.derivations(), 4);
        exchange_cached("s3cret", &more_rounds, &cache).unwrap();
        assert_eq!(cache.derivations(), 5);
    }

    /// One proof, several secrets with one salt: the right one is found wherever it sits,
    /// a wrong password matches none, and no candidates fail like a wrong password.
    #[test]
    fn a_proof_is_matched_among_candidates_sharing_a_salt() {
        let salt = b"one salt per user".to_vec();
        let keys = |pw: &str| {
            let s = ScramSecret::derive(pw, &salt, 64);
            (s.stored_key, s.server_key)
        };
        let candidates = vec![keys("first"), keys("second"), keys("third")];
        for (pw, want) in [
            ("first", Ok(0)),
            ("third", Ok(2)),
            ("nope", Err(ScramError::InvalidProof)),
        ] {
            let mut server = ScramServer::any_of(salt.clone(), 64, candidates.clone());
            let mut client = ScramClient::new(pw);
            let first = server.handle_client_first(&client.client_first()).unwrap();
            let fin = client.handle_server_first(&first).unwrap();
            let got = server.handle_client_final(&fin).map(|server_final| {
                client.handle_server_final(&server_final).unwrap();
                server.matched().unwrap()
            });
            assert_eq!(got, want, "password {pw}");
        }
        let mut server = ScramServer::any_of(salt.clone(), 64, Vec::new());
        let mut client = ScramClient::new("first");
        let first = server.handle_client_first(&client.client_first()).unwrap();
        assert!(String::from_utf8(first.clone()).unwrap().contains(",i=64"));
        let fin = client.handle_server_first(&first).unwrap();
        assert_eq!(
            server.handle_client_final(&fin),
            Err(ScramError::InvalidProof)
        );
        assert_eq!(server.matched(), None);
    }

    /// A client-final-message for `password`, computed by hand, with `c=` set to `binding`
    /// (what a client with channel binding sends; `ScramClient` binds nothing).
    fn client_final(
        password: &str,
        client_first_bare: &str,
        server_first: &[u8],
        binding: &[u8],
    ) -> Vec<u8> {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let mut parts = server_first.split(',');
        let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
        let salt = B64
            .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let iterations: u32 = parts
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let (client_key, _) = derive_keys(password.as_bytes(), &salt, iterations);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c={},r={nonce}", B64.encode(binding));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof)).into_bytes()
    }

    /// SCRAM-SHA-256-PLUS: offered only with binding data, accepted with the same data, refused
    /// with another certificate's; and once it is offered, a client that could bind but did
    /// not (`y`) is refused as a downgrade, while one that cannot (`n`) still logs in.
    #[test]
    fn channel_binding_ties_the_proof_to_the_certificate() {
        let secret = ScramSecret::derive("pw", b"salt", 16);
        let end_point = b"hash of the gateway certificate".to_vec();
        assert_eq!(
            ScramServer::new(secret.clone()).mechanisms(),
            [SCRAM_SHA_256]
        );
        let server =
            || ScramServer::new(secret.clone()).with_channel_binding(Some(end_point.clone()));
        assert_eq!(server().mechanisms(), [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);

        let header = b"p=tls-server-end-point,,";
        for (seen, want) in [
            (end_point.clone(), Ok(())),
            (
                b"a man in the middle".to_vec(),
                Err(ScramError::ChannelBindingMismatch),
            ),
        ] {
            let mut s = server();
            s.choose_mechanism(SCRAM_SHA_256_PLUS).unwrap();
            let first = s
                .handle_client_first(b"p=tls-server-end-point,,n=,r=abc")
                .unwrap();
            let binding = [header.as_slice(), &seen].concat();
            let fin = client_final("pw", "n=,r=abc", &first, &binding);
            assert_eq!(s.handle_client_final(&fin).map(|_| ()), want);
        }

        let mut s = server();
        s.choose_mechanism(SCRAM_SHA_256).unwrap();
        assert_eq!(
            s.handle_client_first(b"y,,n=,r=abc"),
            Err(ScramError::ChannelBindingDowngrade)
        );
        let mut s = server();
        s.choose_mechanism(SCRAM_SHA_256).unwrap();
        let first = s.handle_client_first(b"n,,n=,r=abc").unwrap();
        let fin = client_final("pw", "n=,r=abc", &first, b"n,,");
        assert!(s.handle_client_final(&fin).is_ok());

        let mut s = server();
        s.choose_mechanism(SCRAM_SHA_256_PLUS).unwrap();
        assert!(matches!(
            s.handle_client_first(b"n,,n=,r=abc"),
            Err(ScramError::Malformed(_))
        ));
        let mut s = server();
        assert!(s.choose_mechanism("SCRAM-SHA-1").is_err());
        let mut s = ScramServer::new(secret.clone());
        assert!(s.choose_mechanism(SCRAM_SHA_256_PLUS).is_err());
    }

    /// The end-point hash follows the certificate's signature algorithm, and there is none for
    /// Ed25519 or for bytes that are not a certificate.
    #[test]
    fn tls_server_end_point_hashes_with_the_signature_algorithm() {
        let der = |alg: &'static rcgen::SignatureAlgorithm| {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            params.self_signed(&key).unwrap().der().to_vec()
        };
        let p256 = der(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            tls_server_end_point(&p256),
            Some(Sha256::digest(&p256).to_vec())
        );
        let p384 = der(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(
            tls_server_end_point(&p384),
            Some(sha2::Sha384::digest(&p384).to_vec())
        );
        assert_eq!(tls_server_end_point(&der(&rcgen::PKCS_ED25519)), None);
        assert_eq!(tls_server_end_point(b"not a certificate"), None);
        assert_eq!(tls_server_end_point(&p256[..40]), None);
        assert_eq!(tls_server_end_point(&[]), None);
    }

    #[test]
    fn client_against_server() {
        exchange("s3cret", "s3cret").unwrap();
        assert_eq!(exchange("wrong", "s3cret"), Err(ScramError::InvalidProof));
    }

    #[test]
    fn server_accepts_y_flag_and_refuses_channel_binding() {
        let secret = ScramSecret::derive("pw", b"salt", 16);
        let mut server = ScramServer::new(secret.clone());
        assert!(server.handle_client_first(b"y,,n=,r=abc").is_ok());
        let mut server = ScramServer::new(secret);
        let err = server
            .handle_client_first(b"p=tls-server-end-point,,n=,r=abc")
            .unwrap_err();
        assert_eq!(err, ScramError::ChannelBindingUnsupported);
        assert!(err.to_string().contains("channel_binding=prefer"));
    }

    #[test]
    fn server_refuses_tampered_binding_and_nonce() {
        let secret = ScramSecret::derive("pw", b"salt", 16);
        let mut server = ScramServer::with_nonce(secret.clone(), "SRV");
        server.handle_client_first(b"n,,n=,r=abc").unwrap();
        assert!(
            server
                .handle_client_final(b"c=eSws,r=abcSRV,p=AAAA")
                .is_err()
        );
        let mut server = ScramServer::with_nonce(secret, "SRV");
        server.handle_client_first(b"n,,n=,r=abc").unwrap();
        assert_eq!(
            server.handle_client_final(b"c=biws,r=abcXXX,p=AAAA"),
            Err(ScramError::NonceMismatch)
        );
    }

    #[test]
    fn client_refuses_foreign_nonce_and_bad_signature() {
        let mut client = ScramClient::with_nonce("", "pw", "abc");
        assert_eq!(
            client.handle_server_first(b"r=xyz123,s=c2FsdA==,i=16"),
            Err(ScramError::NonceMismatch)
        );
        let mut client = ScramClient::with_nonce("", "pw", "abc");
        client
            .handle_server_first(b"r=abc123,s=c2FsdA==,i=16")
            .unwrap();
        assert_eq!(
            client.handle_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::InvalidServerSignature)
        );
    }

    #[test]
    fn client_refuses_huge_iteration_counts() {
        let mut client = ScramClient::with_nonce("", "pw", "abc");
        assert_eq!(
            client.handle_server_first(b"r=abc123,s=c2FsdA==,i=4000000000"),
            Err(ScramError::TooManyIterations(4_000_000_000))
        );
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b",",
            b"n,",
            b"n,,",
            b"r=",
            b"\xff\xfe",
            b"p=,,",
            b"n,,n=,r=",
        ] {
            let mut server = ScramServer::new(ScramSecret::derive("pw", b"s", 1));
            let _ = server.handle_client_first(input);
            let _ = server.handle_client_final(input);
            let mut client = ScramClient::new("pw");
            let _ = client.handle_server_first(input);
            let _ = client.handle_server_final(input);
        }
    }
}

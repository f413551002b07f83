//! The SSH algorithm sets we offer, and the log line for a client that shares none of them.

use std::borrow::Cow;
use std::net::SocketAddr;

use russh::Preferred;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};

use super::offer;
use crate::config::Algorithms;

/// The algorithms offered for `set`. Never SHA-1, never CBC. Strict kex (Terrapin fix) is
/// announced by listing `kex-strict-s-v00@openssh.com`.
///
/// `Modern` offers AEAD ciphers and ETM MACs only. `Compatible` adds, after them, what OpenSSH
/// offers by default that `Modern` lacks: AES-CTR with the non-ETM hmac-sha2 MACs
/// (encrypt-and-MAC; not affected by Terrapin, which needs ChaCha20-Poly1305 or an ETM MAC with
/// CBC). Clients that have AEAD keep choosing it: the server takes the client's first choice
/// that it offers.
pub fn preferred_algorithms(set: Algorithms) -> Preferred {
    let mut cipher = vec![
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_128_GCM,
    ];
    let mut mac = vec![russh::mac::HMAC_SHA512_ETM, russh::mac::HMAC_SHA256_ETM];
    if set == Algorithms::Compatible {
        cipher.extend([
            russh::cipher::AES_256_CTR,
            russh::cipher::AES_192_CTR,
            russh::cipher::AES_128_CTR,
        ]);
        mac.extend([russh::mac::HMAC_SHA512, russh::mac::HMAC_SHA256]);
    }
    Preferred {
        kex: Cow::Owned(vec![
            russh::kex::MLKEM768X25519_SHA256,
            russh::kex::CURVE25519,
            russh::kex::CURVE25519_PRE_RFC_8731,
            russh::kex::EXTENSION_SUPPORT_AS_SERVER,
            russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Owned(cipher),
        mac: Cow::Owned(mac),
        compression: Cow::Owned(vec![russh::compression::NONE]),
    }
}

/// A client whose offer does not meet ours cannot connect; say what it offered, so an operator
/// can see why (and whether `algorithms = "compatible"` would let it in).
pub(super) fn log_no_common_algorithm(
    peer: SocketAddr,
    opening: &offer::Captured,
    set: Algorithms,
    kind: russh::AlgorithmKind,
    ours: &[String],
    theirs: &[String],
) {
    let offer = opening
        .get()
        .ok_or(offer::OfferError::NotRecorded)
        .and_then(|c| offer::ClientOffer::parse(c));
    let Ok(offer) = offer else {
        tracing::warn!(
            ?peer,
            failed = ?kind,
            client_offered = %theirs.join(","),
            ours = %ours.join(","),
            "SSH negotiation failed: no common {kind:?} algorithm"
        );
        return;
    };
    let compatible = preferred_algorithms(Algorithms::Compatible);
    let meets = |theirs: &[String], ours: &[russh::cipher::Name]| {
        theirs.iter().any(|t| ours.iter().any(|o| o.as_ref() == t))
    };
    let macs_meet = offer
        .macs
        .iter()
        .any(|t| compatible.mac.iter().any(|o| o.as_ref() == t));
    let hint = if set == Algorithms::Modern
        && meets(&offer.ciphers, &compatible.cipher)
        && macs_meet
        && matches!(
            kind,
            russh::AlgorithmKind::Cipher | russh::AlgorithmKind::Mac
        ) {
        "this client would connect with [server] algorithms = \"compatible\" (docs/ssh-algorithms.md)"
    } else {
        // Kex, host key and compression are the same in both sets; negotiation stops at the
        // first kind that fails, so a cipher or MAC failure means kex already matched.
        "neither algorithm set of this gateway matches this client's offer"
    };
    tracing::warn!(
        ?peer,
        client = %offer.version,
        failed = ?kind,
        client_kex = %offer.kex.join(","),
        client_host_keys = %offer.host_keys.join(","),
        client_ciphers = %offer.ciphers.join(","),
        client_macs = %offer.macs.join(","),
        ours = %ours.join(","),
        algorithms = set.name(),
        hint,
        "SSH negotiation failed: no common {kind:?} algorithm"
    );
}

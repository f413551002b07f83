//! SSH public key logins: the offered key must be one of the user's authorized keys.

use russh::keys::PublicKey;

/// Whether `offered` is among `authorized` (the key material; comments do not matter).
pub fn authorized(authorized: &[PublicKey], offered: &PublicKey) -> bool {
    authorized
        .iter()
        .any(|k| k.key_data() == offered.key_data())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    fn key(seed: u8, comment: &str) -> PublicKey {
        let mut k = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone();
        k.set_comment(comment);
        k
    }

    #[test]
    fn a_listed_key_matches_whatever_its_comment_and_others_do_not() {
        let list = [key(1, "alice@laptop"), key(2, "alice@desk")];
        assert!(authorized(&list, &key(2, "")));
        assert!(!authorized(&list, &key(3, "alice@laptop")));
        assert!(!authorized(&[], &key(1, "")));
    }
}

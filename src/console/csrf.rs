//! CSRF protection. Officers authenticate by client certificate, which a browser also sends on
//! a forged cross-site form post; so every POST must carry a token only the console's own
//! pages contain: an HMAC of the officer's certificate under a key made at start. It is the
//! same for all of an officer's pages (no server-side session to keep) and useless to anyone
//! else. Fetch metadata (`Sec-Fetch-Site`) and `Origin` are checked as well, as a second wall.

use ring::hmac;

pub(super) struct CsrfKey(hmac::Key);

impl CsrfKey {
    pub fn generate() -> CsrfKey {
        let rng = ring::rand::SystemRandom::new();
        // Only fails if the OS has no randomness, when nothing else would work either.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness");
        CsrfKey(key)
    }

    /// The token to put in the officer's forms.
    pub fn token(&self, fingerprint: &str) -> String {
        hex::encode(hmac::sign(&self.0, fingerprint.as_bytes()).as_ref())
    }

    /// Constant-time check of a submitted token.
    pub fn verify(&self, fingerprint: &str, token: &str) -> bool {
        hex::decode(token.trim())
            .is_ok_and(|tag| hmac::verify(&self.0, fingerprint.as_bytes(), &tag).is_ok())
    }
}

/// Whether the browser says the request came from another site. `Sec-Fetch-Site` is set by
/// every current browser; `Origin` by older ones on POST. Either naming another origin refuses.
pub(super) fn cross_site(headers: &hyper::HeaderMap, host: Option<&str>) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (headers.get(hyper::header::ORIGIN), host) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            // Under the console's `Referrer-Policy: no-referrer` Chromium sends `Origin: null`
            // for the console's own forms; `Sec-Fetch-Site` (checked above) then decides.
            !(origin == format!("https://{host}") || (origin == "null" && fetch_site.is_some()))
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_binds_to_the_officer_and_key() {
        let k = CsrfKey::generate();
        let t = k.token("sha256:AA");
        assert!(k.verify("sha256:AA", &t));
        assert!(!k.verify("sha256:AB", &t));
        assert!(!k.verify("sha256:AA", ""));
        assert!(!k.verify("sha256:AA", "zz"));
        assert!(!CsrfKey::generate().verify("sha256:AA", &t));
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = hyper::HeaderMap::new();
        assert!(!cross_site(&h, Some("127.0.0.1:9443")));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        h.insert("origin", "https://127.0.0.1:9443".parse().unwrap());
        assert!(!cross_site(&h, Some("127.0.0.1:9443")));
        // A same-origin form under no-referrer: Chromium says `Origin: null`.
        let mut n = hyper::HeaderMap::new();
        n.insert("sec-fetch-site", "same-origin".parse().unwrap());
        n.insert("origin", "null".parse().unwrap());
        assert!(!cross_site(&n, Some("127.0.0.1:9443")));
        n.remove("sec-fetch-site");
        assert!(cross_site(&n, Some("127.0.0.1:9443")));
        assert!(cross_site(&h, Some("127.0.0.1:9444")));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h, Some("127.0.0.1:9443")));
        let mut h = hyper::HeaderMap::new();
        h.insert("origin", "https://evil.example".parse().unwrap());
        assert!(cross_site(&h, Some("127.0.0.1:9443")));
    }
}

//! JSON Web Tokens as the `jwt` plugin reads them: decoding (with Kong's error texts), the
//! signature check for each algorithm, and the registered-claim checks.
//!
//! Cryptography is `ring`'s (already linked for TLS): HMAC for HS*, RSASSA-PKCS1-v1_5 (RS*) and
//! RSASSA-PSS (PS*) with keys of 2048 to 8192 bits, ECDSA P-256 / P-384 with fixed-size
//! signatures (ES256 / ES384), and Ed25519 (EdDSA). Public keys are PEM `PUBLIC KEY`
//! (SubjectPublicKeyInfo) documents. ES512 (P-521) is not available in `ring`.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Map, Value};

use super::auth::decode_base64;

/// A decoded, not yet verified token.
#[derive(Debug)]
pub(super) struct Token<'a> {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// Its `alg`.
    pub alg: String,
    /// `header.claims`, the signed text.
    signed: &'a str,
    signature: Vec<u8>,
}

/// Algorithms a token may name (Kong's list).
const ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// Decodes `token` (`header.claims.signature`, base64url); the error is Kong's text after
/// `Bad token; `.
pub(super) fn decode(token: &str) -> Result<Token<'_>, &'static str> {
    let mut parts = token.splitn(3, '.');
    let (Some(header_64), Some(claims_64), Some(signature_64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("invalid JSON");
    };
    let json = |part: &str| -> Result<Value, &'static str> {
        let bytes = decode_base64(part, true).ok_or("invalid JSON")?;
        serde_json::from_slice(&bytes).map_err(|_| "invalid JSON")
    };
    let (header, claims) = (json(header_64)?, json(claims_64)?);
    let Value::Object(header) = header else {
        return Err("invalid alg");
    };
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if ALGORITHMS.contains(&alg.as_str()) => alg.clone(),
        _ => return Err("invalid alg"),
    };
    let claims = match claims {
        Value::Object(claims) => claims,
        // A JSON array has no named claims.
        Value::Array(_) => Map::new(),
        _ => return Err("invalid claims"),
    };
    let signature = decode_base64(signature_64, true).ok_or("invalid signature")?;
    Ok(Token {
        header,
        claims,
        alg,
        signed: &token[..header_64.len() + 1 + claims_64.len()],
        signature,
    })
}

/// Why a signature could not be checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum KeyError {
    /// The stored key is not a usable public key.
    #[error("the public key cannot be used")]
    Invalid,
    /// The algorithm is not implemented.
    #[error("algorithm {0} is not supported")]
    Unsupported(&'static str),
}

/// The kind of key in a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl Token<'_> {
    /// Checks the signature with an HMAC `secret` (HS*) or a PEM public key (the others).
    pub fn verify(&self, key: &[u8]) -> Result<bool, KeyError> {
        let hmac = |algorithm| {
            let key = ring::hmac::Key::new(algorithm, key);
            Ok(ring::hmac::verify(&key, self.signed.as_bytes(), &self.signature).is_ok())
        };
        let (kind, algorithm): (&[KeyKind], &'static dyn VerificationAlgorithm) =
            match self.alg.as_str() {
                "HS256" => return hmac(ring::hmac::HMAC_SHA256),
                "HS384" => return hmac(ring::hmac::HMAC_SHA384),
                "HS512" => return hmac(ring::hmac::HMAC_SHA512),
                "RS256" => (&[KeyKind::Rsa], &signature::RSA_PKCS1_2048_8192_SHA256),
                "RS384" => (&[KeyKind::Rsa], &signature::RSA_PKCS1_2048_8192_SHA384),
                "RS512" => (&[KeyKind::Rsa], &signature::RSA_PKCS1_2048_8192_SHA512),
                "PS256" => (&[KeyKind::Rsa], &signature::RSA_PSS_2048_8192_SHA256),
                "PS384" => (&[KeyKind::Rsa], &signature::RSA_PSS_2048_8192_SHA384),
                "PS512" => (&[KeyKind::Rsa], &signature::RSA_PSS_2048_8192_SHA512),
                "ES256" => (&[KeyKind::P256], &signature::ECDSA_P256_SHA256_FIXED),
                "ES384" => (&[KeyKind::P384], &signature::ECDSA_P384_SHA384_FIXED),
                "EdDSA" => (&[KeyKind::Ed25519], &signature::ED25519),
                // ES512: P-521 is not in ring.
                _ => return Err(KeyError::Unsupported("ES512")),
            };
        let (found, public) = public_key(key).ok_or(KeyError::Invalid)?;
        if !kind.contains(&found) {
            return Ok(false);
        }
        Ok(UnparsedPublicKey::new(algorithm, public)
            .verify(self.signed.as_bytes(), &self.signature)
            .is_ok())
    }
}

/// One DER element: its tag, its contents, and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// The kind and raw key (RSAPublicKey DER, EC point, Ed25519 bytes) of a PEM `PUBLIC KEY`.
fn public_key(pem: &[u8]) -> Option<(KeyKind, Vec<u8>)> {
    let mut reader = pem;
    let spki = rustls_pemfile::public_keys(&mut reader).next()?.ok()?;
    let (0x30, spki, _) = der(spki.as_ref())? else {
        return None;
    };
    let (0x30, algorithm, rest) = der(spki)? else {
        return None;
    };
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    let (0x06, oid, params) = der(algorithm)? else {
        return None;
    };
    let kind = match oid {
        OID_RSA | OID_RSA_PSS => KeyKind::Rsa,
        OID_ED25519 => KeyKind::Ed25519,
        OID_EC => match der(params)? {
            (0x06, OID_P256, _) => KeyKind::P256,
            (0x06, OID_P384, _) => KeyKind::P384,
            (0x06, OID_P521, _) => KeyKind::P521,
            _ => return None,
        },
        _ => return None,
    };
    // A BIT STRING starts with its count of unused bits, zero for keys.
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some((kind, key.to_vec()))
}

/// A registered claim the plugin can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// `exp`: the token has expired at that time.
    Exp,
    /// `nbf`: the token is not valid before that time.
    Nbf,
}

impl Claim {
    /// The claim called `name`.
    pub fn parse(name: &str) -> Option<Claim> {
        match name {
            "exp" => Some(Claim::Exp),
            "nbf" => Some(Claim::Nbf),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Claim::Exp => "exp",
            Claim::Nbf => "nbf",
        }
    }
}

/// Checks `claims` at `now` (seconds since the epoch): each of `verify` must be a number in
/// range, and with `maximum_expiration` > 0 the token may not live longer than that. The
/// error maps each failing claim to why, as Kong reports it.
pub(super) fn check_claims(
    claims: &Map<String, Value>,
    verify: &[Claim],
    maximum_expiration: f64,
    now: f64,
) -> Result<(), Map<String, Value>> {
    let mut errors = Map::new();
    for claim in verify {
        let problem = match claims.get(claim.name()).and_then(Value::as_f64) {
            None => "must be a number",
            Some(exp) if *claim == Claim::Exp && exp <= now => "token expired",
            Some(nbf) if *claim == Claim::Nbf && nbf > now => "token not valid yet",
            Some(_) => continue,
        };
        errors.insert(claim.name().into(), Value::from(problem));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if maximum_expiration > 0.0 {
        let exp = claims.get("exp").and_then(Value::as_f64);
        if exp.is_none_or(|exp| exp - now > maximum_expiration) {
            errors.insert(
                "exp".into(),
                Value::from("exceeds maximum allowed expiration"),
            );
            return Err(errors);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn hs256(claims: &Value, secret: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            b64(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, signed.as_bytes());
        format!("{signed}.{}", b64(tag.as_ref()))
    }

    #[test]
    fn decodes_and_verifies_hmac() {
        let token = hs256(&json!({"iss": "k"}), b"secret");
        let t = decode(&token).expect("decodes");
        assert_eq!(t.alg, "HS256");
        assert_eq!(t.claims["iss"], "k");
        assert_eq!(t.verify(b"secret"), Ok(true));
        assert_eq!(t.verify(b"other"), Ok(false));
    }

    #[test]
    fn malformed_tokens_get_kongs_reasons() {
        let h = b64(br#"{"alg":"HS256"}"#);
        let c = b64(br#"{"iss":"k"}"#);
        assert_eq!(decode("abc").err(), Some("invalid JSON"));
        assert_eq!(decode("a.b").err(), Some("invalid JSON"));
        assert_eq!(decode(&format!("{h}.!!.sig")).err(), Some("invalid JSON"));
        assert_eq!(
            decode(&format!("{}.{c}.sig", b64(b"not json"))).err(),
            Some("invalid JSON")
        );
        assert_eq!(
            decode(&format!("{}.{c}.sig", b64(br#"{"alg":"none"}"#))).err(),
            Some("invalid alg")
        );
        assert_eq!(
            decode(&format!("{}.{c}.sig", b64(br#"{"alg":1}"#))).err(),
            Some("invalid alg")
        );
        assert_eq!(
            decode(&format!("{}.{c}.sig", b64(b"[1]"))).err(),
            Some("invalid alg")
        );
        assert_eq!(
            decode(&format!("{h}.{}.sig", b64(b"42"))).err(),
            Some("invalid claims")
        );
        assert_eq!(
            decode(&format!("{h}.{c}.s!g")).err(),
            Some("invalid signature")
        );
        // The signature may hold dots: they belong to it (and fail as base64).
        assert_eq!(
            decode(&format!("{h}.{c}.a.b")).err(),
            Some("invalid signature")
        );
        let token = format!("{h}.{c}.");
        let t = decode(&token).expect("empty signature decodes");
        assert_eq!(t.verify(b"secret"), Ok(false));
    }

    #[test]
    fn bad_public_keys_are_errors_not_panics() {
        let h = b64(br#"{"alg":"RS256"}"#);
        let token = format!("{h}.{}.AAAA", b64(b"{}"));
        let t = decode(&token).expect("decodes");
        assert_eq!(t.verify(b"garbage"), Err(KeyError::Invalid));
        let pem = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(t.verify(pem), Err(KeyError::Invalid));
    }

    #[test]
    fn claims() {
        let now = 1_000_000.0;
        let ok = check_claims(&Map::new(), &[], 0.0, now);
        assert!(ok.is_ok());
        let claims = |v: Value| v.as_object().cloned().expect("object");
        let both = [Claim::Exp, Claim::Nbf];
        assert_eq!(
            check_claims(
                &claims(json!({"exp": now, "nbf": now + 1.0})),
                &both,
                0.0,
                now
            ),
            Err(claims(
                json!({"exp": "token expired", "nbf": "token not valid yet"})
            ))
        );
        assert_eq!(
            check_claims(&claims(json!({"exp": "soon"})), &[Claim::Exp], 0.0, now),
            Err(claims(json!({"exp": "must be a number"})))
        );
        assert!(check_claims(
            &claims(json!({"exp": now + 60.0, "nbf": now})),
            &both,
            0.0,
            now
        )
        .is_ok());
        assert_eq!(
            check_claims(
                &claims(json!({"exp": now + 61.0})),
                &[Claim::Exp],
                60.0,
                now
            ),
            Err(claims(json!({"exp": "exceeds maximum allowed expiration"})))
        );
        assert!(check_claims(
            &claims(json!({"exp": now + 60.0})),
            &[Claim::Exp],
            60.0,
            now
        )
        .is_ok());
    }
}

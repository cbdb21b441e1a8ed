//! The dashboard's self-signed certificate, made with `ring`: an ECDSA
//! P-256 key and an X.509 v3 certificate (RFC 5280) for `storegate`,
//! `localhost` and `127.0.0.1`, DER-encoded (X.690) by the small encoder
//! below and written as PEM.

use base64::Engine;
use jiff::civil::DateTime;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

/// The subject's (and issuer's) common name.
const COMMON_NAME: &str = "storegate";
/// The names the certificate is good for.
const DNS_NAMES: [&str; 2] = ["storegate", "localhost"];
const IP_ADDRESSES: [[u8; 4]; 1] = [[127, 0, 0, 1]];
/// How long the certificate is valid: browsers keep trusting it (once the
/// manager accepted it) for the life of the router.
const VALID_YEARS: i16 = 20;

/// A certificate and its private key, both PEM.
pub struct SelfSigned {
    /// `CERTIFICATE`.
    pub cert_pem: String,
    /// PKCS#8 `PRIVATE KEY`.
    pub key_pem: String,
}

/// A new key and a certificate valid from a day ago (a router's clock may
/// lag the browser's) for [`VALID_YEARS`].
pub fn generate() -> Result<SelfSigned, String> {
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let not_before = now
        .checked_sub(jiff::Span::new().days(1))
        .map_err(|e| format!("certificate start date: {e}"))?;
    let not_after = now
        .checked_add(jiff::Span::new().years(VALID_YEARS))
        .map_err(|e| format!("certificate end date: {e}"))?;
    generate_valid(not_before.datetime(), not_after.datetime())
}

/// As [`generate`], valid from `not_before` to `not_after` (UTC).
pub fn generate_valid(not_before: DateTime, not_after: DateTime) -> Result<SelfSigned, String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| "cannot generate the certificate's key".to_string())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| format!("cannot read the certificate's new key: {e}"))?;
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)
        .map_err(|_| "cannot make the certificate's serial number".to_string())?;
    // Positive (top bit clear) and a full 16 bytes long (next bit set).
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let tbs = tbs_certificate(&serial, not_before, not_after, key.public_key().as_ref())?;
    let signature = key
        .sign(&rng, &tbs)
        .map_err(|_| "cannot sign the certificate".to_string())?;
    let cert = der::sequence(&[
        tbs,
        ecdsa_with_sha256(),
        der::bit_string(signature.as_ref()),
    ]);
    Ok(SelfSigned {
        cert_pem: pem("CERTIFICATE", &cert),
        key_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
    })
}

/// Object identifiers (RFC 5280, RFC 5480, RFC 5758).
mod oid {
    pub const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    pub const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
    pub const PRIME256V1: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
    pub const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    pub const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    pub const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    pub const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub const SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
}

/// AlgorithmIdentifier for ecdsa-with-SHA256: no parameters (RFC 5758).
fn ecdsa_with_sha256() -> Vec<u8> {
    der::sequence(&[der::oid(oid::ECDSA_WITH_SHA256)])
}

/// Name with one RDN: CN=`cn`.
fn name(cn: &str) -> Vec<u8> {
    let attribute = der::sequence(&[der::oid(oid::COMMON_NAME), der::utf8_string(cn)]);
    der::sequence(&[der::set(&[attribute])])
}

/// Extension: the value DER-encoded inside an OCTET STRING.
fn extension(id: &[u64], critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![der::oid(id)];
    if critical {
        parts.push(der::boolean(true));
    }
    parts.push(der::octet_string(&value));
    der::sequence(&parts)
}

/// The TBSCertificate for `public_key` (an uncompressed P-256 point).
fn tbs_certificate(
    serial: &[u8],
    not_before: DateTime,
    not_after: DateTime,
    public_key: &[u8],
) -> Result<Vec<u8>, String> {
    let validity = der::sequence(&[der::time(not_before)?, der::time(not_after)?]);
    let spki = der::sequence(&[
        der::sequence(&[der::oid(oid::EC_PUBLIC_KEY), der::oid(oid::PRIME256V1)]),
        der::bit_string(public_key),
    ]);
    // GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET STRING.
    let mut names: Vec<Vec<u8>> = DNS_NAMES
        .iter()
        .map(|n| der::tlv(der::CONTEXT | 2, n.as_bytes()))
        .collect();
    names.extend(IP_ADDRESSES.iter().map(|ip| der::tlv(der::CONTEXT | 7, ip)));
    // KeyUsage: only digitalSignature (bit 0), so 7 unused bits.
    let key_usage = der::tlv(der::BIT_STRING, &[7, 0x80]);
    let extensions = der::sequence(&[
        // Not critical: the subject is not empty (RFC 5280 4.2.1.6).
        extension(oid::SUBJECT_ALT_NAME, false, der::sequence(&names)),
        // cA FALSE is the default, so the sequence is empty in DER.
        extension(oid::BASIC_CONSTRAINTS, true, der::sequence(&[])),
        extension(oid::KEY_USAGE, true, key_usage),
        extension(
            oid::EXT_KEY_USAGE,
            false,
            der::sequence(&[der::oid(oid::SERVER_AUTH)]),
        ),
    ]);
    Ok(der::sequence(&[
        // version v3 (2), [0] EXPLICIT.
        der::tlv(der::CONTEXT_CONSTRUCTED, &der::integer(&[2])),
        der::integer(serial),
        ecdsa_with_sha256(),
        name(COMMON_NAME),
        validity,
        name(COMMON_NAME),
        spki,
        // extensions [3] EXPLICIT.
        der::tlv(der::CONTEXT_CONSTRUCTED | 3, &extensions),
    ]))
}

/// PEM (RFC 7468): base64 in lines of 64 between the labels.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so every 64-byte chunk is whole characters.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The few DER (X.690) encodings a certificate needs.
mod der {
    use jiff::civil::DateTime;

    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// Context-specific class, primitive (IMPLICIT tags of primitives).
    pub const CONTEXT: u8 = 0x80;
    /// Context-specific class, constructed (EXPLICIT tags).
    pub const CONTEXT_CONSTRUCTED: u8 = 0xa0;

    /// The length octets: short form below 128, else long form with the
    /// fewest bytes.
    pub fn length(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
            return;
        }
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }

    /// Tag, length, contents.
    pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(contents.len() + 6);
        out.push(tag);
        length(contents.len(), &mut out);
        out.extend_from_slice(contents);
        out
    }

    pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(SEQUENCE, &parts.concat())
    }

    /// A SET of one or more elements, sorted as DER wants.
    pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut sorted = parts.to_vec();
        sorted.sort();
        tlv(SET, &sorted.concat())
    }

    /// A non-negative INTEGER from big-endian bytes: leading zeros
    /// dropped, and one 0x00 put back when the top bit is set so it does
    /// not read as negative.
    pub fn integer(unsigned: &[u8]) -> Vec<u8> {
        let skip = unsigned.iter().take_while(|&&b| b == 0).count();
        let digits = &unsigned[skip..];
        let mut contents = Vec::with_capacity(digits.len() + 1);
        if digits.first().is_none_or(|&b| b & 0x80 != 0) {
            contents.push(0);
        }
        contents.extend_from_slice(digits);
        tlv(INTEGER, &contents)
    }

    pub fn boolean(value: bool) -> Vec<u8> {
        tlv(BOOLEAN, &[if value { 0xff } else { 0 }])
    }

    /// A BIT STRING of whole bytes (no unused bits).
    pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
        let mut contents = Vec::with_capacity(bytes.len() + 1);
        contents.push(0);
        contents.extend_from_slice(bytes);
        tlv(BIT_STRING, &contents)
    }

    pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
        tlv(OCTET_STRING, bytes)
    }

    pub fn utf8_string(s: &str) -> Vec<u8> {
        tlv(UTF8_STRING, s.as_bytes())
    }

    /// An OBJECT IDENTIFIER from its arcs (at least two, the first two
    /// folded into one subidentifier), each in base 128.
    pub fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut contents = Vec::new();
        let first = match arcs {
            [a, b, ..] => a * 40 + b,
            _ => 0,
        };
        for &arc in std::iter::once(&first).chain(arcs.iter().skip(2)) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            contents.extend(groups.iter().rev());
        }
        tlv(OBJECT_IDENTIFIER, &contents)
    }

    /// A certificate Time (RFC 5280 4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for
    /// the years 1950 to 2049, GeneralizedTime `YYYYMMDDHHMMSSZ` for the
    /// others; whole seconds, UTC.
    pub fn time(t: DateTime) -> Result<Vec<u8>, String> {
        let year = t.year();
        if !(0..=9999).contains(&year) {
            return Err(format!(
                "certificate date {t} is outside the years 0 to 9999"
            ));
        }
        let rest = format!(
            "{:02}{:02}{:02}{:02}{:02}Z",
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        Ok(if (1950..2050).contains(&year) {
            tlv(UTC_TIME, format!("{:02}{rest}", year % 100).as_bytes())
        } else {
            tlv(GENERALIZED_TIME, format!("{year:04}{rest}").as_bytes())
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn header(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        der::length(len, &mut out);
        out
    }

    #[test]
    fn der_lengths_use_the_short_form_below_128_and_the_fewest_bytes_above() {
        assert_eq!(header(0), [0x00]);
        assert_eq!(header(127), [0x7f]);
        assert_eq!(header(128), [0x81, 0x80]);
        assert_eq!(header(255), [0x81, 0xff]);
        assert_eq!(header(256), [0x82, 0x01, 0x00]);
        assert_eq!(header(65535), [0x82, 0xff, 0xff]);
        assert_eq!(header(65536), [0x83, 0x01, 0x00, 0x00]);
        for (len, head) in [(127, 2), (128, 3), (255, 3), (256, 4), (65535, 4)] {
            let v = der::octet_string(&vec![0xab; len]);
            assert_eq!(v.len(), head + len, "{len}");
            assert_eq!(v[0], der::OCTET_STRING);
            assert_eq!(v[head..], vec![0xab; len][..], "{len}");
        }
    }

    #[test]
    fn der_integers_are_positive_and_minimal() {
        // Top bit set: a leading 0x00 keeps it positive.
        assert_eq!(der::integer(&[0x80, 0x01]), [0x02, 0x03, 0x00, 0x80, 0x01]);
        assert_eq!(der::integer(&[0xff]), [0x02, 0x02, 0x00, 0xff]);
        let serial = [0xc3u8; 16];
        let v = der::integer(&serial);
        assert_eq!(v[..3], [0x02, 17, 0x00]);
        assert_eq!(v[3..], serial);
        // Top bit clear: as is; leading zeros dropped.
        assert_eq!(der::integer(&[0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(der::integer(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(der::integer(&[0x00, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der::integer(&[2]), [0x02, 0x01, 0x02]);
        assert_eq!(der::integer(&[0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(der::integer(&[]), [0x02, 0x01, 0x00]);
    }

    #[test]
    fn der_object_identifiers() {
        let hex = |arcs: &[u64]| {
            der::oid(arcs)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(hex(oid::ECDSA_WITH_SHA256), "06082a8648ce3d040302");
        assert_eq!(hex(oid::EC_PUBLIC_KEY), "06072a8648ce3d0201");
        assert_eq!(hex(oid::PRIME256V1), "06082a8648ce3d030107");
        assert_eq!(hex(oid::SUBJECT_ALT_NAME), "0603551d11");
        assert_eq!(hex(oid::SERVER_AUTH), "06082b06010505070301");
    }

    #[test]
    fn der_times_switch_to_generalized_time_in_2050() {
        let at = |y, mo, d, h, mi, s| der::time(jiff::civil::datetime(y, mo, d, h, mi, s, 0));
        let t = at(2049, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(t[..2], [der::UTC_TIME, 13]);
        assert_eq!(&t[2..], b"491231235959Z");
        let t = at(2050, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(t[..2], [der::GENERALIZED_TIME, 15]);
        assert_eq!(&t[2..], b"20500101000000Z");
        let t = at(1950, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(&t[2..], b"500102030405Z");
        let t = at(1949, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(t[..2], [der::GENERALIZED_TIME, 15]);
        assert_eq!(&t[2..], b"19491231235959Z");
        assert!(at(-1, 1, 1, 0, 0, 0).is_err());
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let p = pem("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 136 - 128);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert!(p.ends_with("-----\n"));
    }

    /// `openssl x509 -noout -text` of `cert_pem`, or `None` without openssl.
    pub(in crate::dashboard::tls) fn openssl_text(cert_pem: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, cert_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&path)
            .output();
        match out {
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(String::from_utf8(out.stdout).unwrap())
            }
            Err(e) => {
                eprintln!("skipped: openssl is not installed ({e})");
                None
            }
        }
    }

    #[test]
    fn openssl_reads_the_names_validity_and_extensions() {
        let made = generate_valid(
            jiff::civil::datetime(2026, 11, 30, 10, 0, 0, 0),
            jiff::civil::datetime(2060, 1, 2, 3, 4, 5, 0),
        )
        .unwrap();
        let Some(text) = openssl_text(&made.cert_pem) else {
            return;
        };
        for want in [
            "Version: 3 (0x2)",
            "Signature Algorithm: ecdsa-with-SHA256",
            "Issuer: CN = storegate",
            "Subject: CN = storegate",
            "Not Before: Nov 30 10:00:00 2026 GMT",
            "Not After : Jan  2 03:04:05 2060 GMT",
            "Public Key Algorithm: id-ecPublicKey",
            "NIST CURVE: P-256",
            "DNS:storegate, DNS:localhost, IP Address:127.0.0.1",
            "X509v3 Basic Constraints: critical",
            "CA:FALSE",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "TLS Web Server Authentication",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert!(!text.contains("Certificate Sign"), "{text}");
    }
}

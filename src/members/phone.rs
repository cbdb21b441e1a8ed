//! What a shopper types: phone numbers and member numbers, checked and
//! brought to one canonical form before they are hashed into a member id.
//! Pure functions over untrusted input: bounded, never panicking.

use crate::config::MemberNumberCheck;

/// Longest input looked at; anything longer is not a number.
const MAX_INPUT: usize = 40;
/// E.164 allows at most 15 digits; fewer than 8 is no mobile number.
const E164_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// Brings a phone number to its E.164 digits (without the `+`).
///
/// Accepts ASCII digits with spaces and dashes between them, and an
/// international form with a leading `+` or `00`. A national number
/// (neither) gets `default_country_code` in front, after dropping one
/// leading trunk `0` (as in UK `07700 900123`). `None` if it is not a
/// number of 8 to 15 digits.
pub fn normalise_phone(input: &str, default_country_code: &str) -> Option<String> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_INPUT {
        return None;
    }
    let (international, rest) = match input.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    let full = if international {
        digits
    } else if let Some(intl) = digits.strip_prefix("00") {
        intl.to_string()
    } else {
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        if national.is_empty() {
            return None;
        }
        format!("{default_country_code}{national}")
    };
    let ok = E164_DIGITS.contains(&full.len()) && !full.starts_with('0');
    ok.then_some(full)
}

/// The last four digits, for "••1234" on the welcome page.
pub fn last4(e164_digits: &str) -> String {
    let start = e164_digits.len().saturating_sub(4);
    e164_digits.get(start..).unwrap_or_default().to_string()
}

/// Checks a member number: ASCII digits (spaces and dashes between them
/// are dropped), a length within `digits`, and the configured check.
/// Returns the digits.
pub fn check_member_number(
    input: &str,
    digits: (u32, u32),
    check: MemberNumberCheck,
) -> Option<String> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    let len = u32::try_from(out.len()).ok()?;
    if len < digits.0 || len > digits.1 {
        return None;
    }
    match check {
        MemberNumberCheck::None => Some(out),
        MemberNumberCheck::Luhn => luhn_valid(&out).then_some(out),
    }
}

/// Whether the last digit is the Luhn (mod 10) check digit of the rest.
/// `false` for anything but at least two ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_come_to_e164_digits() {
        let n = |s| normalise_phone(s, "86");
        assert_eq!(n("13812345678").as_deref(), Some("8613812345678"));
        assert_eq!(n(" 138-1234-5678 ").as_deref(), Some("8613812345678"));
        assert_eq!(n("+86 138 1234 5678").as_deref(), Some("8613812345678"));
        assert_eq!(n("0086 13812345678").as_deref(), Some("8613812345678"));
        assert_eq!(n("+1 415-555-0100").as_deref(), Some("14155550100"));
        assert_eq!(
            normalise_phone("07700 900123", "44").as_deref(),
            Some("447700900123"),
            "a national trunk 0 is dropped"
        );
    }

    #[test]
    fn what_is_not_a_phone_number_is_refused() {
        let n = |s| normalise_phone(s, "86");
        for bad in [
            "",
            "   ",
            "+",
            "++8613812345678",
            "+86+13812345678",
            "138abc45678",
            "138.1234.5678",
            "(138) 1234 5678",
            "138\n12345678",
            "１３８１２３４５６７８",
            "12",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "0",
            "00",
            "0000000000",
            &"1".repeat(200),
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn last_four_digits() {
        assert_eq!(last4("8613812345678"), "5678");
        assert_eq!(last4("12"), "12");
    }

    #[test]
    fn luhn_check_digits() {
        assert!(luhn_valid("79927398713"));
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("0"));
        assert!(!luhn_valid("12a4"));
        assert!(luhn_valid("00"));
    }

    #[test]
    fn member_numbers_are_checked_for_length_and_luhn() {
        let none = |s| check_member_number(s, (8, 12), MemberNumberCheck::None);
        let luhn = |s| check_member_number(s, (8, 12), MemberNumberCheck::Luhn);
        assert_eq!(none("1234 5678").as_deref(), Some("12345678"));
        assert_eq!(none("1234-5678-9012").as_deref(), Some("123456789012"));
        assert_eq!(none("1234567"), None, "too short");
        assert_eq!(none("1234567890123"), None, "too long");
        assert_eq!(none("1234567a"), None);
        assert_eq!(none(""), None);
        assert_eq!(luhn("7992739871 3").as_deref(), Some("79927398713"));
        assert_eq!(luhn("79927398710"), None);
        assert_eq!(none("79927398710").as_deref(), Some("79927398710"));
    }
}

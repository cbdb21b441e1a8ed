//! What a shopper types into the member forms: phone numbers and member
//! numbers. Whatever comes back is well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storegate::config::MemberNumberCheck;
use storegate::members::phone;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(e164) = phone::normalise_phone(text, "86") {
        assert!((8..=15).contains(&e164.len()), "{e164}");
        assert!(e164.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(phone::last4(&e164).len(), 4);
    }
    for check in [MemberNumberCheck::None, MemberNumberCheck::Luhn] {
        if let Some(n) = phone::check_member_number(text, (6, 16), check) {
            assert!(n.bytes().all(|b| b.is_ascii_digit()), "{n}");
            assert!((6..=16).contains(&n.len()), "{n}");
            if check == MemberNumberCheck::Luhn {
                assert!(phone::luhn_valid(&n));
            }
        }
    }
});

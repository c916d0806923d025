//! Property tests of `traceparent` parsing (issue 12, generated bad input): the header comes
//! from any caller and, in events, from any publisher; any text parses or is refused with a
//! [`TraceParentError`], never a panic, and every valid version-00 value round-trips.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

/// A traceparent-shaped value with one character replaced, removed or added.
fn near_valid() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        prop::sample::select("0123456789abcdefABCDEF-xg ".chars().collect::<Vec<_>>()),
        any::<char>(),
    ];
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<prop::sample::Index>(),
        c,
        0u8..3,
    )
        .prop_map(|(trace, span, flags, at, c, edit)| {
            let mut chars: Vec<char> = format!("00-{trace:032x}-{span:016x}-{flags:02x}")
                .chars()
                .collect();
            let i = at.index(chars.len());
            match edit {
                0 => chars[i] = c,
                1 => {
                    chars.remove(i);
                }
                _ => chars.insert(i, c),
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text, and near-valid values: a context or a typed refusal.
    #[test]
    fn any_text_parses_or_is_refused(text in prop_oneof![any::<String>(), near_valid()]) {
        if let Ok(ctx) = TraceContext::parse(&text) {
            // What parses is what it prints, up to the fields a later version may append.
            let printed = ctx.traceparent();
            prop_assert_eq!(&text.trim()[3..55], &printed[3..]);
        }
    }

    /// Every valid version-00 value parses and prints back unchanged.
    #[test]
    fn valid_values_round_trip(trace in 1u128.., span in 1u64.., flags in any::<u8>()) {
        let text = format!("00-{trace:032x}-{span:016x}-{flags:02x}");
        let ctx = TraceContext::parse(&text).unwrap();
        prop_assert_eq!(ctx.traceparent(), text);
        prop_assert_eq!(ctx.sampled(), flags & 1 == 1);
    }
}

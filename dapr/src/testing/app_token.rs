//! Near misses of an app API token, for tests of the routes only daprd may call.

use crate::client::API_TOKEN_HEADER;

/// One way to call with the wrong credentials: what it is, and the header sent (`None`: none).
pub type WrongToken = (&'static str, Option<(&'static str, String)>);

/// Every credential but `token` that a caller might present where daprd presents `token` in
/// `dapr-api-token`: no header, an empty one, another value, the token with its last byte
/// changed, cut short, lengthened, upper-cased or padded, and the right token in
/// `Authorization: Bearer`. Each must be refused the same way.
pub fn wrong_app_tokens(token: &str) -> Vec<WrongToken> {
    let header = API_TOKEN_HEADER;
    let mut last_changed = token.to_owned();
    let last = last_changed.pop();
    last_changed.push(if last == Some('X') { 'Y' } else { 'X' });
    let prefix: String = token
        .chars()
        .take(token.chars().count().saturating_sub(1))
        .collect();
    vec![
        ("no header", None),
        ("empty", Some((header, String::new()))),
        ("wrong", Some((header, "wrong".to_owned()))),
        ("last byte changed", Some((header, last_changed))),
        ("prefix", Some((header, prefix))),
        ("longer", Some((header, format!("{token}x")))),
        ("upper case", Some((header, token.to_uppercase()))),
        ("padded", Some((header, format!(" {token}")))),
        (
            "as bearer",
            Some(("authorization", format!("Bearer {token}"))),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_case_presents_the_token_in_its_header() {
        let token = "fixture-token";
        let cases = wrong_app_tokens(token);
        assert_eq!(cases.len(), 9);
        for (case, header) in cases {
            assert_ne!(
                header,
                Some((API_TOKEN_HEADER, token.to_owned())),
                "{case} is the right token"
            );
        }
        let (_, changed) = &wrong_app_tokens("abX")[3];
        assert_eq!(changed, &Some((API_TOKEN_HEADER, "abY".to_owned())));
    }
}

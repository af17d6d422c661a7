//! Query strings as the admin API reads them: `name=value` pairs, percent-decoded, with `+`
//! as a space (what browsers' `URLSearchParams` send).

/// The decoded pairs of a query string, in order; a name without `=` has an empty value.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Percent-decodes one component; invalid escapes are kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn pairs_are_percent_decoded() {
        assert_eq!(
            pairs("prefix=http%3A%2F%2Fa.test%2Fx+y&limit=5&flag&&bad=%zz%4"),
            [
                ("prefix".into(), "http://a.test/x y".into()),
                ("limit".into(), "5".into()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
        assert!(pairs("").is_empty());
    }
}

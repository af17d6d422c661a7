//! Cache keys: a digest of the canonical URL, plus optional policy key components and Vary
//! variants. The store names files by key and the manifest records rows by key.
//!
//! Every key of one URL shares the URL digest as its prefix, so all of a URL's files sit side
//! by side.

use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

/// Where an entry lives: `<sha256(url)>[-<policy components>][.<vary variant>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// The key of a canonical absolute URL, extended with the cache-key components a policy chose.
    pub fn for_url(url: &str, components: &[String]) -> Key {
        let mut stem = url_digest(url);
        if !components.is_empty() {
            let mut hasher = Xxh3::new();
            for component in components {
                hasher.update(&(component.len() as u64).to_le_bytes());
                hasher.update(component.as_bytes());
            }
            stem.push('-');
            stem.push_str(&format!("{:016x}", hasher.digest()));
        }
        Key(stem)
    }

    /// The key of one Vary variant: this key plus a digest of the request's values of the varied headers.
    pub fn variant(&self, values: &[(String, Option<Vec<u8>>)]) -> Key {
        let mut hasher = Xxh3::new();
        for (name, value) in values {
            hasher.update(name.as_bytes());
            match value {
                Some(value) => {
                    hasher.update(&[1]);
                    hasher.update(&(value.len() as u64).to_le_bytes());
                    hasher.update(value);
                }
                None => hasher.update(&[0]),
            }
        }
        Key(format!("{}.{:016x}", self.0, hasher.digest()))
    }

    /// Rebuilds a key from its text (a file name of the store, a manifest row), refusing
    /// anything caje did not write: a key names a file, so it must never name another path.
    pub fn parse(name: &str) -> Option<Key> {
        let (digest, rest) = name.split_at_checked(64)?;
        if !digest
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let valid_rest = rest
            .split(['-', '.'])
            .skip(1)
            .all(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()));
        (valid_rest && (rest.is_empty() || rest.starts_with(['-', '.'])))
            .then(|| Key(name.to_owned()))
    }

    /// The hex digest of the URL this key belongs to.
    pub fn url_digest(&self) -> &str {
        &self.0[..64]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key is written as its text (the admin API's listings).
impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hex sha256 of a canonical URL: the prefix of every key of that URL.
pub fn url_digest(url: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(url.as_bytes());
    // Hex by table: this runs for every request.
    let mut text = String::with_capacity(64 + 34);
    for byte in digest {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_url_share_its_digest() {
        let plain = Key::for_url("http://a.test/x", &[]);
        let with_component = Key::for_url("http://a.test/x", &["mobile".into()]);
        let variant = with_component.variant(&[("accept-encoding".into(), Some(b"gzip".to_vec()))]);
        assert_ne!(plain, with_component);
        assert_eq!(plain.url_digest(), variant.url_digest());
        assert_eq!(Key::parse(variant.as_str()), Some(variant.clone()));
        assert_ne!(plain, Key::for_url("http://a.test/y", &[]));
    }

    #[test]
    fn variant_distinguishes_absent_from_empty_values() {
        let key = Key::for_url("http://a.test/", &[]);
        let absent = key.variant(&[("x-a".into(), None)]);
        let empty = key.variant(&[("x-a".into(), Some(Vec::new()))]);
        assert_ne!(absent, empty);
    }

    #[test]
    fn foreign_file_names_are_not_keys() {
        assert_eq!(Key::parse(".tmp.abc"), None);
        assert_eq!(Key::parse("readme.txt"), None);
        let digest = url_digest("http://a.test/");
        assert_eq!(Key::parse(&format!("{digest}.zz")), None);
        assert!(Key::parse(&digest).is_some());
    }
}

//! Where an offset of a TOML text is: its 1-based line and the dotted key defined there, so
//! that an error about a file (the config, a policy cases file) names both.

/// The 1-based line of `offset` and the dotted key defined on or above it.
pub fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_number = before.matches('\n').count() + 1;
    let mut table: Option<String> = None;
    for line in before.lines() {
        if let Some(header) = table_header(line) {
            table = Some(header);
        }
    }
    let current_line = text.lines().nth(line_number - 1).unwrap_or("");
    if let Some(header) = table_header(current_line) {
        return (line_number, Some(header));
    }
    let key = current_line
        .split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty() && !key.starts_with('#'))
        .or_else(|| {
            // An unknown key is reported at the key itself, before any `=`.
            let word = current_line.trim();
            (!word.is_empty() && !word.starts_with('#')).then(|| word.to_owned())
        });
    let dotted = match (table, key) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, key) => key,
        (table, None) => table,
    };
    (line_number, dotted)
}

fn table_header(line: &str) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?.split(']').next()?;
    let inner = inner.trim_start_matches('[').trim();
    (!inner.is_empty()).then(|| inner.to_owned())
}

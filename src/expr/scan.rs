//! Cheap textual scans of an expression: which secrets it names.

/// The literal paths of `variable('…')` and `resource('…')` calls in `source`, in order of
/// first appearance, so a caller can resolve only those before evaluating. Calls with a
/// computed path are not found; they meet a "not set" error at run time.
pub fn referenced_secrets(source: &str) -> (Vec<String>, Vec<String>) {
    (
        literal_call_args(source, "variable"),
        literal_call_args(source, "resource"),
    )
}

fn literal_call_args(source: &str, function: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for (start, end) in word_occurrences(source, function) {
        if is_property_name(source, start) {
            continue;
        }
        let mut rest = source[end..].trim_start();
        let Some(after_paren) = rest.strip_prefix('(') else {
            continue;
        };
        rest = after_paren.trim_start();
        let Some((path, after)) = string_literal(rest) else {
            continue;
        };
        if after.trim_start().starts_with([')', ',']) && !paths.iter().any(|p| p == path) {
            paths.push(path.to_owned());
        }
    }
    paths
}

/// A quoted string without escapes or substitutions at the start of `text`, and the text after it.
fn string_literal(text: &str) -> Option<(&str, &str)> {
    let quote = text
        .chars()
        .next()
        .filter(|c| matches!(c, '\'' | '"' | '`'))?;
    let body = &text[1..];
    let end = body.find(quote)?;
    let content = &body[..end];
    if content.contains(['\\', '\n']) || content.contains("${") {
        return None;
    }
    Some((content, &body[end + 1..]))
}

/// Whether the word at `start` follows a single `.`: then it names a property of
/// something else (`a.results`), not the binding. A spread (`...results`) is the binding.
fn is_property_name(source: &str, start: usize) -> bool {
    let before = source[..start].trim_end();
    before.ends_with('.') && !before.ends_with("...")
}

/// Byte ranges of `word` in `source` where it stands as a whole identifier.
fn word_occurrences<'a>(
    source: &'a str,
    word: &'a str,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    source.match_indices(word).filter_map(move |(start, _)| {
        let end = start + word.len();
        let before_ok = !source[..start]
            .chars()
            .next_back()
            .is_some_and(is_ident_char);
        let after_ok = !source[end..].chars().next().is_some_and(is_ident_char);
        (before_ok && after_ok).then_some((start, end))
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_secret_paths() {
        let (vars, res) = referenced_secrets(
            "variable('f/a') + variable(\"u/b\", 1) + variable('f/a') + resource(`f/db`) + x.variable('no') + variable(p)",
        );
        assert_eq!(vars, ["f/a", "u/b"]);
        assert_eq!(res, ["f/db"]);
        assert_eq!(
            referenced_secrets("myvariable('x') + variable(`a${b}`)"),
            (vec![], vec![])
        );
    }
}

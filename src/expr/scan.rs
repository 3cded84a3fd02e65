//! Cheap textual scans of an expression: which secrets it names, which step results it
//! can reach, how deeply its brackets nest. All are conservative: when the text is not
//! plainly static they say so.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

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

/// The step ids an expression reads from `results`, when every mention of `results` is a
/// static member access (`results.a`, `results?.a`, `results['a']`) of a step that exists.
/// `None` means the expression may reach any result, so all of them must be bound.
pub(crate) fn reachable_results(
    source: &str,
    results: &Map<String, Value>,
) -> Option<BTreeSet<String>> {
    // Unicode escapes can spell `results` without the word appearing, and a direct `eval`
    // can compute the name: both defeat a textual scan.
    if source.contains("\\u") || word_occurrences(source, "eval").next().is_some() {
        return None;
    }
    let mut reached = BTreeSet::new();
    for (start, end) in word_occurrences(source, "results") {
        if is_property_name(source, start) {
            continue;
        }
        let key = static_member(&source[end..])?;
        if !results.contains_key(key) {
            // Not a step: possibly an inherited member such as `hasOwnProperty`.
            return None;
        }
        reached.insert(key.to_owned());
    }
    Some(reached)
}

/// The member name of `.name`, `?.name`, `['name']` or `?.['name']` at the start of `rest`.
fn static_member(rest: &str) -> Option<&str> {
    let rest = rest.trim_start();
    let (optional, rest) = match rest.strip_prefix("?.") {
        Some(after) => (true, after.trim_start()),
        None => (false, rest),
    };
    if let Some(after) = rest.strip_prefix('[') {
        let (name, after) = string_literal(after.trim_start())?;
        return after.trim_start().starts_with(']').then_some(name);
    }
    let rest = if optional {
        rest
    } else {
        rest.strip_prefix('.')?.trim_start()
    };
    let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
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

/// How deeply brackets, braces and template substitutions nest in `source`, skipping
/// strings, comments and regular expressions. Unbalanced closers are ignored: the parser
/// reports those.
pub(crate) fn nesting_depth(source: &str) -> usize {
    /// What an open `{`… closes back to: code, or the template text around a `${`.
    #[derive(PartialEq)]
    enum Open {
        Bracket,
        Substitution,
    }
    let bytes = source.as_bytes();
    let mut open: Vec<Open> = Vec::new();
    let (mut deepest, mut in_template, mut i) = (0, false, 0);
    // The last two bytes of code that are not blank: whether a `/` starts a regular
    // expression or divides.
    let (mut last, mut before_last) = (b'(', b'(');
    while i < bytes.len() {
        let byte = bytes[i];
        if in_template {
            match byte {
                b'\\' => i += 1,
                b'`' => (in_template, last) = (false, b'`'),
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    open.push(Open::Substitution);
                    (in_template, last) = (false, b'{');
                    i += 1;
                }
                _ => {}
            }
            deepest = deepest.max(open.len());
            i += 1;
            continue;
        }
        match byte {
            b'(' | b'[' | b'{' => open.push(Open::Bracket),
            b')' | b']' => {
                open.pop();
            }
            b'}' => in_template = open.pop() == Some(Open::Substitution),
            b'`' => in_template = true,
            b'\'' | b'"' => i = skip_quoted(bytes, i, byte),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = source[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + n + 4);
                continue;
            }
            b'/' if starts_regex(last, before_last) => i = skip_regex(bytes, i),
            _ => {}
        }
        if !byte.is_ascii_whitespace() {
            (last, before_last) = (byte, last);
        }
        deepest = deepest.max(open.len());
        i += 1;
    }
    deepest
}

/// Whether a `/` after `last` (and `before_last`) starts a regular expression. Where
/// unsure it divides: a regular expression skipped wrongly could hide brackets.
fn starts_regex(last: u8, before_last: u8) -> bool {
    let ends_value = last.is_ascii_alphanumeric()
        || matches!(last, b')' | b']' | b'}' | b'_' | b'$' | b'\'' | b'"' | b'`')
        // `a++ / b`
        || (matches!(last, b'+' | b'-') && before_last == last);
    !ends_value && last.is_ascii()
}

/// The index of the quote closing the string that opens at `start`.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    i
}

/// The index of the `/` closing the regular expression that opens at `start`; a `/`
/// inside a class (`[/]`) does not close it.
fn skip_regex(bytes: &[u8], start: usize) -> usize {
    let (mut i, mut in_class) = (start + 1, false);
    while i < bytes.len() && bytes[i] != b'\n' {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'/' if !in_class => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn steps() -> Map<String, Value> {
        json!({"a": 1, "b": 2, "c": 3}).as_object().unwrap().clone()
    }

    fn reach(source: &str) -> Option<Vec<String>> {
        reachable_results(source, &steps()).map(|set| set.into_iter().collect())
    }

    #[test]
    fn static_accesses_reach_only_their_steps() {
        assert_eq!(
            reach("results.a + results?.b.x + results['a'] + flow_input.results"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(reach("results?.[\"c\"]"), Some(vec!["c".into()]));
        assert_eq!(reach("flow_input.x"), Some(vec![]));
    }

    #[test]
    fn dynamic_accesses_reach_everything() {
        for source in [
            "Object.keys(results)",
            "results[flow_input.k]",
            "({...results})",
            "results.hasOwnProperty('a')",
            "results.missing",
            "eval('res' + 'ults')",
            "r\\u0065sults.a",
            "(results => results.a)(1)",
        ] {
            assert_eq!(reach(source), None, "{source}");
        }
    }

    #[test]
    fn nesting_counts_brackets_braces_and_substitutions() {
        assert_eq!(nesting_depth("flow_input.a + 1"), 0);
        assert_eq!(nesting_depth("f(a[0], {b: [1]})"), 3);
        assert_eq!(nesting_depth("`x ${ `y ${ (1) }` }`"), 3);
        assert_eq!(nesting_depth(&"(".repeat(100_000)), 100_000);
        assert_eq!(
            nesting_depth(&format!("{}1{}", "[".repeat(500), "]".repeat(500))),
            500
        );
    }

    #[test]
    fn nesting_skips_strings_comments_and_regular_expressions() {
        for (source, depth) in [
            ("'((((' + \"[[[\" + `{{{{`", 0),
            ("a // ((((\n+ (b)", 1),
            ("a /* [[[[ */ + [b]", 1),
            ("/[(]+\\//.test(x) && (y)", 1),
            ("(a) / (b) / (c)", 1),
            ("'it\\'s (' + (1)", 1),
            ("`${ '}' }` + [1]", 1),
            ("))) ]]] (1)", 1),
            ("a++ / (b) / 2", 1),
            ("'a' / (2) / 1", 1),
            ("a /* / */ / (b) / 2", 1),
        ] {
            assert_eq!(nesting_depth(source), depth, "{source}");
        }
    }
}

//! Finds the step ids an expression reads through `results`.
//!
//! This is a scan over JavaScript tokens, not a parser: it skips string literals, comments and
//! the text of template literals (but not their `${…}` parts), and reports `results.x`,
//! `results?.x`, `results["x"]` and `results?.['x']`. Computed keys (`results[name]`) cannot be
//! checked before the flow runs and are not reported.

use crate::expr::MAX_NESTING;

/// The ids in `results.<id>` accesses of `source`, in order of appearance (repeats included).
pub fn result_refs(source: &str) -> Vec<String> {
    let mut scan = Scan {
        src: source.as_bytes(),
        pos: 0,
        refs: Vec::new(),
        templates: 0,
    };
    scan.code(false);
    scan.refs
}

struct Scan<'a> {
    src: &'a [u8],
    pos: usize,
    refs: Vec<String>,
    /// Templates open around the position: each nests a call of [`Scan::template`].
    templates: usize,
}

impl Scan<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    /// Scans code until the end, or, inside a template's `${…}`, until its closing brace.
    fn code(&mut self, in_template: bool) {
        let mut depth = 0usize;
        // The last significant byte before the current token, to tell `x.results` from `results`.
        let mut previous = b' ';
        while let Some(c) = self.peek(0) {
            match c {
                b'/' if self.peek(1) == Some(b'/') => self.skip_until(b"\n"),
                b'/' if self.peek(1) == Some(b'*') => {
                    self.pos += 2;
                    self.skip_until(b"*/");
                }
                b'\'' | b'"' => {
                    self.string(c);
                }
                b'`' => {
                    self.pos += 1;
                    self.template();
                }
                b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' if in_template && depth == 0 => {
                    self.pos += 1;
                    return;
                }
                b'}' => {
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                c if is_ident_start(c) => {
                    let ident = self.identifier();
                    if ident == "results" && previous != b'.' {
                        self.accessor();
                    }
                }
                _ => self.pos += 1,
            }
            if !c.is_ascii_whitespace() {
                previous = c;
            }
        }
    }

    /// Skips the text of a template literal (after its opening backtick), scanning its `${…}` parts.
    /// Templates nested deeper than an expression may nest end the scan, not this thread's
    /// stack: the syntax check refuses such an expression anyway.
    fn template(&mut self) {
        if self.templates >= MAX_NESTING {
            self.pos = self.src.len();
            return;
        }
        self.templates += 1;
        self.template_text();
        self.templates -= 1;
    }

    fn template_text(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.pos += 2,
                b'`' => {
                    self.pos += 1;
                    return;
                }
                b'$' if self.peek(1) == Some(b'{') => {
                    self.pos += 2;
                    self.code(true);
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Reads a quoted string starting at its opening quote; returns its raw contents.
    fn string(&mut self, quote: u8) -> &str {
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.pos += 2,
                c if c == quote || c == b'\n' => break,
                _ => self.pos += 1,
            }
        }
        let end = self.pos.min(self.src.len());
        self.pos = end + 1;
        std::str::from_utf8(&self.src[start..end]).unwrap_or("")
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        while self.peek(0).is_some_and(is_ident_part) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("")
    }

    fn skip_whitespace(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn skip_until(&mut self, end: &[u8]) {
        while self.pos < self.src.len() && !self.src[self.pos..].starts_with(end) {
            self.pos += 1;
        }
        self.pos = (self.pos + end.len()).min(self.src.len());
    }

    /// After `results`: records the id of a following `.id`, `?.id`, `["id"]` or `?.["id"]`.
    fn accessor(&mut self) {
        self.skip_whitespace();
        let optional = self.peek(0) == Some(b'?') && self.peek(1) == Some(b'.');
        if optional {
            self.pos += 2;
            self.skip_whitespace();
        }
        match self.peek(0) {
            Some(b'.') if !optional => {
                self.pos += 1;
                self.skip_whitespace();
                self.property_name();
            }
            Some(c) if optional && is_ident_start(c) => self.property_name(),
            Some(b'[') => {
                self.pos += 1;
                self.skip_whitespace();
                if let Some(quote @ (b'\'' | b'"')) = self.peek(0) {
                    let id = self.string(quote).to_string();
                    self.skip_whitespace();
                    if self.peek(0) == Some(b']') {
                        self.refs.push(id);
                    }
                }
            }
            _ => {}
        }
    }

    fn property_name(&mut self) {
        if self.peek(0).is_some_and(is_ident_start) {
            let id = self.identifier().to_string();
            self.refs.push(id);
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$'
}

fn is_ident_part(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::result_refs;

    #[test]
    fn finds_every_access_form() {
        let source = r#"results.a + results?.b + results["c"] + results['d'] + results?.["e"] + results . f"#;
        assert_eq!(result_refs(source), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn ignores_strings_comments_and_other_objects() {
        let source = r#"
            // results.in_comment
            /* results.in_block */
            "results.in_double" + 'results.in_single' + x.results.not_ours + my_results.no
        "#;
        assert!(result_refs(source).is_empty());
    }

    #[test]
    fn scans_template_substitutions_but_not_template_text() {
        let source =
            "`results.text ${results.sub + `${results.nested}`} ${ {a: 1}.a } ${results.after}`";
        assert_eq!(result_refs(source), ["sub", "nested", "after"]);
    }

    #[test]
    fn skips_computed_keys_and_keeps_going_after_them() {
        assert_eq!(result_refs("results[name] + results.x[0].y"), ["x"]);
    }

    #[test]
    fn reads_function_bodies_and_import_lines() {
        let source =
            "import { getState } from 'windmill@1.2.3'\nconst r = results.fetch;\nreturn r.length";
        assert_eq!(result_refs(source), ["fetch"]);
    }

    #[test]
    fn tolerates_unterminated_input() {
        assert_eq!(result_refs("results.a + 'open"), ["a"]);
        assert_eq!(result_refs("`${results.b"), ["b"]);
        assert_eq!(result_refs("results["), Vec::<String>::new());
    }

    #[test]
    fn deeply_nested_templates_end_the_scan_not_the_stack() {
        let deep = format!("results.a + {}", "`${".repeat(100_000));
        assert_eq!(result_refs(&deep), ["a"]);
    }
}

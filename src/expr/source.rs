//! The text of an expression before it runs: Windmill import lines, and the
//! expression-vs-function-body rule.

use boa_engine::ast::StatementListItem;
use boa_engine::ast::statement::Statement;
use boa_engine::interner::Interner;
use boa_engine::parser::{Parser, Source};

use super::ExprError;
use super::scan::nesting_depth;

/// The deepest nesting of brackets, braces and template substitutions parsed. boa's parser
/// recurses through dozens of frames per level: unoptimised, some 70 parentheses overflow
/// an 8 MiB stack. Real expressions stay far below this.
pub(crate) const MAX_NESTING: usize = 32;

/// Refuses a source nested deeper than [`MAX_NESTING`], before boa recurses into it.
pub(crate) fn check_nesting(source: &str) -> Result<(), ExprError> {
    match nesting_depth(source) {
        depth if depth > MAX_NESTING => Err(ExprError::TooDeep {
            depth,
            limit: MAX_NESTING,
        }),
        _ => Ok(()),
    }
}

/// How a source is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// A single expression: its value is the result.
    Expression,
    /// A function body: the result is what it `return`s.
    Body,
}

/// Removes the `import … from 'windmill…'` statements old Windmill exports put at the
/// top of an expression; they import names that are bound anyway.
pub(crate) fn strip_windmill_imports(source: &str) -> &str {
    let mut rest = source;
    while let Some(after) = windmill_import_end(rest) {
        rest = after;
    }
    rest
}

/// The text after a leading `import <clause> from 'windmill…';`, if `source` starts with one.
fn windmill_import_end(source: &str) -> Option<&str> {
    let trimmed = source.trim_start();
    let after_keyword = trimmed.strip_prefix("import")?;
    if !after_keyword.starts_with(|c: char| c.is_whitespace() || c == '{' || c == '*') {
        return None;
    }
    let quote_at = after_keyword.find(['\'', '"'])?;
    let clause = after_keyword[..quote_at].trim();
    if !(clause.is_empty() || clause.ends_with("from")) {
        return None;
    }
    let quote = after_keyword[quote_at..].chars().next()?;
    let module_and_rest = &after_keyword[quote_at + 1..];
    let module_end = module_and_rest.find(quote)?;
    if !module_and_rest[..module_end].starts_with("windmill") {
        return None;
    }
    let rest = module_and_rest[module_end + 1..].trim_start_matches([' ', '\t']);
    Some(rest.strip_prefix(';').unwrap_or(rest))
}

/// Decides how `source` (imports already stripped) runs.
///
/// A source that parses as one expression is an expression; anything else is a
/// function body. This is OPENFLOW.md's rule (no `;`, no leading statement keyword)
/// read by the parser, so a `;` inside a string or a nested function does not turn
/// `list.join(";")` into a body that returns nothing.
pub(crate) fn form_of(source: &str) -> Form {
    let wrapped = expression_body(source);
    let mut interner = Interner::default();
    match Parser::new(Source::from_bytes(&wrapped)).parse_function_body(&mut interner, false, true)
    {
        Ok(body) => match body.statements() {
            [StatementListItem::Statement(statement)]
                if matches!(**statement, Statement::Return(_)) =>
            {
                Form::Expression
            }
            _ => Form::Body,
        },
        Err(_) => Form::Body,
    }
}

/// The function body that returns the value of the expression `source`. The newline
/// before `)` keeps a trailing `// comment` from swallowing it.
pub(crate) fn expression_body(source: &str) -> String {
    format!("return (\n{source}\n);")
}

/// Parses `source` as a function body (the form that accepts every valid source), so
/// the error positions refer to the author's own lines.
pub(crate) fn body_syntax_error(source: &str) -> Option<ExprError> {
    let mut interner = Interner::default();
    Parser::new(Source::from_bytes(source))
        .parse_function_body(&mut interner, false, true)
        .err()
        .map(|e| ExprError::Syntax(e.to_string()))
}

/// Checks that `source` parses, without evaluating it, in the calling thread. Brackets
/// nested deeper than [`MAX_NESTING`] are refused unparsed, but boa's parser recurses for
/// other shapes too (`!!!…x`, long operator chains): some ten thousand levels of those
/// still overflow the stack and abort the process. For untrusted sources use
/// [`super::Evaluator::check`] on a [`super::Sandbox`].
pub fn check_syntax(source: &str) -> Result<(), ExprError> {
    let source = strip_windmill_imports(source);
    check_nesting(source)?;
    match form_of(source) {
        Form::Expression => Ok(()),
        Form::Body => body_syntax_error(source).map_or(Ok(()), Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_leading_windmill_imports_only() {
        let src = "import { previous_result } from 'windmill@1.2.3';\nimport * as wmill from \"windmill-client\"\nprevious_result.x";
        assert_eq!(strip_windmill_imports(src).trim(), "previous_result.x");
        let other = "import x from 'lodash'\nx";
        assert_eq!(strip_windmill_imports(other), other);
        let multi = "import {\n  flow_input,\n  results\n} from 'windmill'\nflow_input.a";
        assert_eq!(strip_windmill_imports(multi).trim(), "flow_input.a");
        assert_eq!(strip_windmill_imports("important + 1"), "important + 1");
    }

    #[test]
    fn single_expressions_are_expressions() {
        for src in [
            "flow_input.a",
            "flow_input.list.join(\";\")",
            "[1, 2].map(x => { const y = x * 2; return y })",
            "`a ${flow_input.b}`",
            "flow_input.a // trailing comment",
            "await Promise.resolve(1)",
            "{ a: 1 }.a === undefined ? 1 : 2",
        ] {
            assert_eq!(form_of(src), Form::Expression, "{src}");
        }
    }

    #[test]
    fn statements_are_bodies() {
        for src in [
            "flow_input.a;",
            "return 1",
            "let x = 1\nreturn x",
            "if (flow_input.a) { return 1 } else { return 2 }",
            "a); (b",
            "x = 1; x + 1",
        ] {
            assert_eq!(form_of(src), Form::Body, "{src}");
        }
    }

    #[test]
    fn check_syntax_reports_positions_in_the_authors_text() {
        assert!(check_syntax("flow_input.a + 1").is_ok());
        assert!(check_syntax("import { x } from 'windmill'\nreturn 1;").is_ok());
        let err = check_syntax("let x = ;").unwrap_err();
        match err {
            ExprError::Syntax(message) => assert!(message.contains("line 1"), "{message}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(check_syntax("flow_input.a +").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // Checked, not parsed: a test thread's stack is smaller than a worker's.
        let at_limit = format!("{}1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(check_nesting(&at_limit), Ok(()));
        assert_eq!(check_syntax("((([{a: `${(1)}`}])))"), Ok(()));
        for deep in [
            "(".repeat(100_000),
            format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
            "`${".repeat(100_000),
        ] {
            assert_eq!(
                check_syntax(&deep),
                Err(ExprError::TooDeep {
                    depth: 100_000,
                    limit: MAX_NESTING
                })
            );
        }
    }
}

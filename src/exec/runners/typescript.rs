//! TypeScript steps (`bun`, `deno`): `export async function main(a, b)` called with the
//! arguments in declaration order by the embedded `wrapper.ts`.

use super::toolchain::TsRuntime;
use super::{Language, Launch, Toolchain, write_file};
use crate::exec::AttemptError;
use serde_json::{Map, Value, json};
use std::path::Path;

/// Run as `bun run DIR/wrapper.ts` (or deno): it reads `main.ts` and `args.json` beside it and
/// writes `result.json` there.
pub const WRAPPER: &str = include_str!("wrapper.ts");

pub(super) fn prepare(
    language: Language,
    content: &str,
    args: &Map<String, Value>,
    control: &Path,
    toolchain: &Toolchain,
) -> Result<Launch, AttemptError> {
    let (runtime, program) = toolchain.typescript(language)?;
    let wrapper_args = wrapper_args(content, args)?;
    write_file(control, "main.ts", content.as_bytes())?;
    write_file(control, "wrapper.ts", WRAPPER.as_bytes())?;
    write_file(control, "args.json", wrapper_args.to_string().as_bytes())?;
    let wrapper = control.join("wrapper.ts").into_os_string();
    let args = match runtime {
        TsRuntime::Bun => vec!["run".into(), "--silent".into(), wrapper],
        TsRuntime::Deno => vec![
            "run".into(),
            "--allow-all".into(),
            "--quiet".into(),
            wrapper,
        ],
    };
    Ok(Launch {
        program: program.into(),
        args,
        env: Vec::new(),
    })
}

/// The `args.json` the wrapper reads: the arguments and the order `main` declares them in.
pub fn wrapper_args(content: &str, args: &Map<String, Value>) -> Result<Value, AttemptError> {
    let order = main_params(content).ok_or_else(|| AttemptError::Raised {
        name: "MainNotFound".into(),
        message:
            "the script exports no function `main` (expected `export async function main(...)`)"
                .into(),
        stack: None,
    })?;
    Ok(json!({"order": order, "args": args}))
}

/// The parameter names of the exported `main`, in order; `None` when there is no such function.
fn main_params(source: &str) -> Option<Vec<String>> {
    let start = ["export async function main", "export function main"]
        .iter()
        .filter_map(|head| source.find(head).map(|at| at + head.len()))
        .min()?;
    let rest = source[start..].trim_start();
    // Skip generic parameters: `main<T>(…)`.
    let rest = match rest.strip_prefix('<') {
        Some(generic) => &generic[matching_close(generic, '<', '>')? + 1..],
        None => rest,
    };
    let params = rest.trim_start().strip_prefix('(')?;
    let body = &params[..matching_close(params, '(', ')')?];
    Some(
        split_top_level(body)
            .into_iter()
            .filter_map(|param| {
                let name: String = param
                    .trim()
                    .trim_start_matches("...")
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect(),
    )
}

/// Index of the bracket closing an already opened `open`, skipping nested brackets and strings.
fn matching_close(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut strings = Strings::default();
    for (i, c) in text.char_indices() {
        if strings.inside(c) {
            continue;
        }
        match c {
            _ if c == open => depth += 1,
            _ if c == close && depth == 0 => return Some(i),
            _ if c == close => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Splits a parameter list at commas that are not inside brackets, type arguments or strings.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut strings = Strings::default();
    let mut start = 0;
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        let arrow = previous == '=' && c == '>';
        previous = c;
        if strings.inside(c) {
            continue;
        }
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' if !arrow => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Follows string literals (`"…"`, `'…'`, `` `…` ``) through a text one character at a time.
#[derive(Default)]
struct Strings {
    quote: Option<char>,
    escaped: bool,
}

impl Strings {
    /// Whether `c` opens, belongs to or closes a string literal.
    fn inside(&mut self, c: char) -> bool {
        match self.quote {
            Some(q) => {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == q {
                    self.quote = None;
                }
                true
            }
            None if matches!(c, '"' | '\'' | '`') => {
                self.quote = Some(c);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_in_declaration_order() {
        let src = "import x from 'y';\nexport async function main(b: string, a = 2, c?: number) {}";
        assert_eq!(main_params(src).unwrap(), vec!["b", "a", "c"]);
    }

    #[test]
    fn nested_types_and_defaults_do_not_split_params() {
        let src = "export function main<T>(x: Record<string, [number, string]>, \
                   y: { a: number, b: string } = { a: 1, b: \"),\" }, f: (a: number) => string, \
                   ...rest: T[]) { return 1 }";
        assert_eq!(main_params(src).unwrap(), vec!["x", "y", "f", "rest"]);
    }

    #[test]
    fn no_params_and_no_main() {
        assert_eq!(
            main_params("export async function main() {}").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(main_params("function main(a) {}"), None);
    }
}

//! Personal messages: in a Bulk Message Sending job from a file, `{{field}}` and
//! `{{field | "default"}}` in the subject and body are replaced, per recipient, by the
//! recipient's value of that column (the file's columns other than `email`). One pass: a
//! value that holds `{{` is sent as it is, never expanded again. A field the recipient has
//! no value for takes the default; with no default, that recipient fails with the reason.
//! Inline jobs' subjects and bodies are sent as written.

use std::collections::BTreeMap;

/// A parsed subject or body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field {
        name: String,
        default: Option<String>,
    },
}

/// Most characters of a field name (a column of the file).
const MAX_NAME_CHARS: usize = 64;

impl Template {
    /// Parses `text`; the error says what is wrong and where (character positions count
    /// from 1).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut at = 0usize;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let position = at + rest[..open].chars().count() + 1;
            let inner_start = open + 2;
            let close = rest[inner_start..]
                .find("}}")
                .ok_or_else(|| format!("the {{{{ at character {position} has no closing }}}}"))?;
            let inner = &rest[inner_start..inner_start + close];
            parts.push(field(inner, position)?);
            let consumed = inner_start + close + 2;
            at += rest[..consumed].chars().count();
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the template names any field.
    pub fn has_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field { .. }))
    }

    /// The text for one recipient, whose fields are `fields` (an empty value is no value).
    /// The error names the field that has neither a value nor a default.
    pub fn render(&self, fields: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { name, default } => {
                    match fields
                        .get(name)
                        .filter(|v| !v.is_empty())
                        .or(default.as_ref())
                    {
                        Some(value) => out.push_str(value),
                        None => {
                            return Err(format!(
                                "no {name} for {{{{{name}}}}}, and no default ({{{{{name} | \"…\"}}}})"
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `name` or `name | "default"`, the inside of `{{…}}` at `position`.
fn field(inner: &str, position: usize) -> Result<Part, String> {
    let (name, default) = match inner.split_once('|') {
        Some((name, default)) => (name.trim(), Some(default.trim())),
        None => (inner.trim(), None),
    };
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{{{{{inner}}}}} at character {position} does not name a field (letters, digits and _)"
        ));
    }
    let default = match default {
        None => None,
        Some(quoted) => match quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .filter(|q| !q.contains('"'))
        {
            Some(text) => Some(text.to_string()),
            None => {
                return Err(format!(
                    "the default of {{{{{name}}}}} at character {position} must be in double quotes: {{{{{name} | \"…\"}}}}"
                ));
            }
        },
    };
    Ok(Part::Field {
        name: name.to_string(),
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_are_replaced_once_with_defaults_and_a_missing_one_is_named() {
        let t = Template::parse("Hi {{first_name | \"there\"}}, your plan: {{ plan }}.").unwrap();
        assert!(t.has_fields());
        assert_eq!(
            t.render(&fields(&[("first_name", "Ann"), ("plan", "Pro")])),
            Ok("Hi Ann, your plan: Pro.".into())
        );
        assert_eq!(
            t.render(&fields(&[("first_name", ""), ("plan", "{{first_name}}")])),
            Ok("Hi there, your plan: {{first_name}}.".into()),
            "an empty value takes the default; a value is never expanded"
        );
        assert_eq!(
            t.render(&fields(&[])),
            Err("no plan for {{plan}}, and no default ({{plan | \"…\"}})".into())
        );
        let plain = Template::parse("Hello, no fields } { here").unwrap();
        assert!(!plain.has_fields());
        assert_eq!(
            plain.render(&fields(&[])),
            Ok("Hello, no fields } { here".into())
        );
    }

    #[test]
    fn a_broken_template_says_where() {
        assert_eq!(
            Template::parse("é {{name"),
            Err("the {{ at character 3 has no closing }}".into())
        );
        assert_eq!(
            Template::parse("{{first name}}"),
            Err(
                "{{first name}} at character 1 does not name a field (letters, digits and _)"
                    .into()
            )
        );
        assert!(
            Template::parse("x {{name | there}}")
                .unwrap_err()
                .contains("must be in double quotes")
        );
    }
}

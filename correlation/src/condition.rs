//! Field conditions on a record, e.g. `http.status >= 500`, for activating
//! fingers-crossed flushing on something other than a level.
//!
//! A dotted path matches nested objects, literal dotted keys, or any mix
//! (`{"http":{"status":500}}`, `{"http.status":500}`). Evaluating parses the record, so the
//! agent only evaluates conditions for records it would otherwise hold.
//!
//! ```
//! use hindsight_correlation::condition::{FieldCondition, Op, Operand};
//!
//! let condition = FieldCondition {
//!     field: "http.status".into(),
//!     op: Op::Ge,
//!     value: Operand::Number(500.0),
//! };
//! assert!(condition.matches(br#"{"http":{"status":503}}"#));
//! assert!(condition.matches(br#"{"http.status":"500"}"#));
//! assert!(!condition.matches(br#"{"http":{"status":200}}"#));
//! assert!(!condition.matches(b"not json"));
//! ```

use serde::Deserialize;
use serde_json::Value;

/// A comparison of one field with a constant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// Dotted path of the field, e.g. `http.status` or `error.type`.
    pub field: String,
    /// The comparison: `==`, `!=`, `>`, `>=`, `<`, `<=`.
    pub op: Op,
    /// The constant: a number (numeric comparison; numeric strings in the record count)
    /// or a string (`==` and `!=` only).
    pub value: Operand,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Op {
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Not equal (also true when the field is absent).
    #[serde(rename = "!=")]
    Ne,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
}

/// The constant a field is compared with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Operand {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
}

impl FieldCondition {
    /// Checks the condition's own consistency: ordering comparisons need a number.
    pub fn validate(&self) -> Result<(), String> {
        if self.field.is_empty() || self.field.split('.').any(str::is_empty) {
            return Err(format!("field `{}`: not a dotted path", self.field));
        }
        if matches!(self.value, Operand::Text(_)) && !matches!(self.op, Op::Eq | Op::Ne) {
            return Err(format!(
                "field `{}`: `{:?}` needs a number",
                self.field, self.op
            ));
        }
        Ok(())
    }

    /// True when the record (a JSON object) satisfies the condition.
    pub fn matches(&self, record: &[u8]) -> bool {
        let Ok(value) = serde_json::from_slice::<Value>(record) else {
            return false;
        };
        let found = lookup(&value, &self.field);
        match (&self.value, found) {
            (_, None) => self.op == Op::Ne,
            (Operand::Number(expected), Some(actual)) => {
                let actual = match actual {
                    Value::Number(number) => number.as_f64(),
                    Value::String(text) => text.trim().parse::<f64>().ok(),
                    _ => None,
                };
                match actual {
                    Some(actual) => compare(self.op, actual.partial_cmp(expected)),
                    None => self.op == Op::Ne,
                }
            }
            (Operand::Text(expected), Some(actual)) => {
                let equal = actual.as_str() == Some(expected.as_str());
                if self.op == Op::Eq {
                    equal
                } else {
                    !equal
                }
            }
        }
    }
}

fn compare(op: Op, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (op, ordering) {
        (Op::Ne, None) => true,
        (_, None) => false,
        (Op::Eq, Some(o)) => o == Equal,
        (Op::Ne, Some(o)) => o != Equal,
        (Op::Gt, Some(o)) => o == Greater,
        (Op::Ge, Some(o)) => o != Less,
        (Op::Lt, Some(o)) => o == Less,
        (Op::Le, Some(o)) => o != Greater,
    }
}

/// Finds `path` in `value`, trying every split of the dotted path into nested keys.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    if let Some(found) = object.get(path) {
        return Some(found);
    }
    path.match_indices('.').find_map(|(dot, _)| {
        object
            .get(&path[..dot])
            .and_then(|inner| lookup(inner, &path[dot + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(field: &str, op: Op, value: Operand) -> FieldCondition {
        FieldCondition {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn dotted_paths_match_nested_flat_and_mixed_shapes() {
        let c = condition("http.response.status_code", Op::Ge, Operand::Number(500.0));
        assert!(c.matches(br#"{"http":{"response":{"status_code":502}}}"#));
        assert!(c.matches(br#"{"http.response.status_code":500}"#));
        assert!(c.matches(br#"{"http":{"response.status_code":599}}"#));
        assert!(!c.matches(br#"{"http":{"response":{"status_code":404}}}"#));
        assert!(!c.matches(br#"{"other":1}"#));
    }

    #[test]
    fn every_operator() {
        let line = br#"{"n":5,"s":"x"}"#;
        let n = |op, v: f64| condition("n", op, Operand::Number(v)).matches(line);
        assert!(n(Op::Eq, 5.0) && !n(Op::Eq, 4.0));
        assert!(n(Op::Ne, 4.0) && !n(Op::Ne, 5.0));
        assert!(n(Op::Gt, 4.0) && !n(Op::Gt, 5.0));
        assert!(n(Op::Ge, 5.0) && !n(Op::Ge, 6.0));
        assert!(n(Op::Lt, 6.0) && !n(Op::Lt, 5.0));
        assert!(n(Op::Le, 5.0) && !n(Op::Le, 4.0));
        let s = |op, v: &str| condition("s", op, Operand::Text(v.into())).matches(line);
        assert!(s(Op::Eq, "x") && !s(Op::Eq, "y") && s(Op::Ne, "y"));
        assert!(condition("missing", Op::Ne, Operand::Number(1.0)).matches(line));
    }

    #[test]
    fn validation_rejects_ordering_on_text_and_empty_segments() {
        assert!(condition("a", Op::Gt, Operand::Text("x".into()))
            .validate()
            .is_err());
        assert!(condition("a..b", Op::Eq, Operand::Number(1.0))
            .validate()
            .is_err());
        assert!(condition("a.b", Op::Eq, Operand::Text("x".into()))
            .validate()
            .is_ok());
    }

    #[test]
    fn parses_from_toml_shapes() {
        let parsed: FieldCondition =
            serde_json::from_str(r#"{"field":"http.status","op":">=","value":500}"#).unwrap();
        assert_eq!(
            parsed,
            condition("http.status", Op::Ge, Operand::Number(500.0))
        );
    }
}

//! The admin API's JSON: a value that keeps its keys in insertion order and
//! prints the way ZooKeeper's Jackson `ObjectMapper` (with `INDENT_OUTPUT`)
//! does, indented by two spaces with ` : ` between key and value.

use std::fmt::Write as _;

use crate::report::{self, Value};

/// A JSON value that keeps its keys in insertion order and prints the way
/// ZooKeeper's Jackson `ObjectMapper` (with `INDENT_OUTPUT`) does.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Printed as a Java double (`0.0`, `3.6667`).
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(super) fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    pub(super) fn uint(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    pub(super) fn obj<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Jackson's `DefaultPrettyPrinter` layout: objects one entry per line,
    /// arrays on one line (`[ 1, 2 ]`), empty ones `{ }` and `[ ]`, no
    /// trailing newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, nesting: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Float(v) => out.push_str(&report::java_double(*v)),
            Json::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Json::Arr(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Arr(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, nesting);
                }
                out.push_str(" ]");
            }
            Json::Obj(entries) if entries.is_empty() => out.push_str("{ }"),
            Json::Obj(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    out.push_str(&"  ".repeat(nesting + 1));
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push_str(" : ");
                    value.write(out, nesting + 1);
                }
                out.push('\n');
                out.push_str(&"  ".repeat(nesting));
                out.push('}');
            }
        }
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Json {
        match v {
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) => Json::Float(*f),
            Value::Text(t) => Json::Str(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_prints_like_jackson() {
        let j = Json::obj([
            (
                "a",
                Json::Arr(vec![
                    Json::obj([("x", Json::Int(1))]),
                    Json::obj([("y", Json::Null)]),
                ]),
            ),
            ("b", Json::Arr(Vec::new())),
            ("c", Json::Obj(Vec::new())),
            ("d", Json::Float(0.0)),
            ("e", Json::Arr(vec![Json::Int(1), Json::Int(2)])),
            ("f", Json::str("q\"\n")),
        ]);
        assert_eq!(
            j.render(),
            "{\n  \"a\" : [ {\n    \"x\" : 1\n  }, {\n    \"y\" : null\n  } ],\n  \"b\" : [ ],\n  \
             \"c\" : { },\n  \"d\" : 0.0,\n  \"e\" : [ 1, 2 ],\n  \"f\" : \"q\\\"\\n\"\n}"
        );
    }
}

//! [`ConfigValue`]: a JavaScript value as the config reader sees it (serde's view of it is in
//! `de.rs`).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A JavaScript value as the config reader sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ConfigValue {
    #[default]
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<ConfigValue>),
    /// Own enumerable properties, in order.
    Object(Vec<(String, ConfigValue)>),
    /// Anything JSON has no place for (a function, a symbol, a bigint, a Date), described.
    Other(String),
}

impl From<&str> for ConfigValue {
    fn from(s: &str) -> Self {
        ConfigValue::String(s.to_owned())
    }
}

impl From<serde_json::Value> for ConfigValue {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => ConfigValue::Null,
            J::Bool(b) => ConfigValue::Bool(b),
            J::Number(n) => ConfigValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            J::String(s) => ConfigValue::String(s),
            J::Array(a) => ConfigValue::Array(a.into_iter().map(Into::into).collect()),
            J::Object(o) => {
                ConfigValue::Object(o.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

/// A number as JavaScript prints it (`NaN`, `Infinity`, `-0`, `1.5`, `1e+21`).
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == 0.0 && n.is_sign_negative() {
        "-0".into()
    } else if n.abs() >= 1e21 || (n != 0.0 && n.abs() < 1e-6) {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{n}")
    }
}

impl ConfigValue {
    /// How an error message shows the value: strings quoted, objects shortened.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        self.describe_into(&mut s, 0);
        if s.chars().count() > 120 {
            s = s.chars().take(117).collect::<String>() + "...";
        }
        s
    }

    fn describe_into(&self, out: &mut String, depth: usize) {
        match self {
            ConfigValue::Undefined => out.push_str("undefined"),
            ConfigValue::Null => out.push_str("null"),
            ConfigValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            ConfigValue::Number(n) => out.push_str(&js_number(*n)),
            ConfigValue::String(s) => {
                let shown: String = s.chars().take(100).collect();
                out.push_str(&serde_json::Value::String(shown).to_string());
                if s.chars().count() > 100 {
                    out.push_str("...");
                }
            }
            ConfigValue::Other(d) => out.push_str(d),
            ConfigValue::Array(items) if depth > 0 => {
                out.push_str(if items.is_empty() { "[]" } else { "[Array]" })
            }
            ConfigValue::Object(e) if depth > 0 => {
                out.push_str(if e.is_empty() { "{}" } else { "[Object]" })
            }
            ConfigValue::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().take(6).enumerate() {
                    out.push_str(if i == 0 { " " } else { ", " });
                    v.describe_into(out, depth + 1);
                }
                out.push_str(if items.is_empty() {
                    "]"
                } else if items.len() > 6 {
                    ", ... ]"
                } else {
                    " ]"
                });
            }
            ConfigValue::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().take(6).enumerate() {
                    out.push_str(if i == 0 { " " } else { ", " });
                    out.push_str(k);
                    out.push_str(": ");
                    v.describe_into(out, depth + 1);
                }
                out.push_str(if entries.is_empty() {
                    "}"
                } else if entries.len() > 6 {
                    ", ... }"
                } else {
                    " }"
                });
            }
        }
    }

    /// Whether the value means "not set" (`undefined` or `null`, as `??` treats them).
    pub(super) fn is_unset(&self) -> bool {
        matches!(self, ConfigValue::Undefined | ConfigValue::Null)
    }
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConfigValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_none<E>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Undefined)
            }
            fn visit_unit<E>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Bool(b))
            }
            fn visit_f64<E>(self, n: f64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n as f64))
            }
            fn visit_str<E>(self, s: &str) -> Result<ConfigValue, E> {
                Ok(ConfigValue::String(s.to_owned()))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<ConfigValue, D::Error> {
                // How [`ValueDe`] hands over a value JSON cannot hold: its description.
                Ok(ConfigValue::Other(String::deserialize(d)?))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<ConfigValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(ConfigValue::Array(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<ConfigValue, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    out.push((k, v));
                }
                Ok(ConfigValue::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

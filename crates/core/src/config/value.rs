//! [`ConfigValue`]: a JavaScript value as the config reader sees it, and serde's view of it,
//! which tracks the path being read and warns about keys no struct knows.

use super::error::ConfigError;
use super::rule;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::cell::RefCell;
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

/// serde's view of a [`ConfigValue`] at `path`.
pub(super) struct ValueDe<'a> {
    pub(super) value: &'a ConfigValue,
    pub(super) path: String,
    pub(super) warnings: &'a RefCell<Vec<String>>,
}

impl<'a> ValueDe<'a> {
    fn child(&self, value: &'a ConfigValue, key: &str) -> ValueDe<'a> {
        ValueDe {
            value,
            path: format!("{}.{key}", self.path),
            warnings: self.warnings,
        }
    }
}

impl<'de, 'a> Deserializer<'de> for ValueDe<'a> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.value {
            ConfigValue::Undefined => v.visit_none(),
            ConfigValue::Null => v.visit_unit(),
            ConfigValue::Bool(b) => v.visit_bool(*b),
            ConfigValue::Number(n) => v.visit_f64(*n),
            ConfigValue::String(s) => v.visit_str(s),
            ConfigValue::Other(d) => v.visit_newtype_struct(d.as_str().into_deserializer()),
            ConfigValue::Array(items) => {
                let path = self.path.clone();
                let mut seq = SeqDe {
                    items: items.iter().enumerate(),
                    parent: &self,
                };
                v.visit_seq(&mut seq).map_err(|e| e.at(&path))
            }
            ConfigValue::Object(entries) => {
                let mut map = MapDe {
                    entries: entries.iter().collect::<Vec<_>>().into_iter(),
                    pending: None,
                    parent: &self,
                };
                v.visit_map(&mut map)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        if self.value.is_unset() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        let ConfigValue::Object(entries) = self.value else {
            return Err(ConfigError::type_error(format!(
                "must be an object, got {}",
                self.value.describe()
            )));
        };
        for (k, _) in entries {
            if !fields.contains(&k.as_str()) {
                self.warnings.borrow_mut().push(format!(
                    "{}.{k} is not a known option (known: {}); it is ignored",
                    self.path,
                    fields.join(", ")
                ));
            }
        }
        let known: Vec<&(String, ConfigValue)> = entries
            .iter()
            .filter(|(k, val)| fields.contains(&k.as_str()) && !val.is_unset())
            .collect();
        let mut map = MapDe {
            entries: known.into_iter(),
            pending: None,
            parent: &self,
        };
        v.visit_map(&mut map)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        match self.value {
            ConfigValue::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            other => Err(ConfigError::range(format!(
                "must be {}, got {}",
                rule::one_of(variants),
                other.describe()
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct SeqDe<'p, 'a, I> {
    items: I,
    parent: &'p ValueDe<'a>,
}

impl<'de, 'p, 'a, I: Iterator<Item = (usize, &'a ConfigValue)>> de::SeqAccess<'de>
    for SeqDe<'p, 'a, I>
{
    type Error = ConfigError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        let child = ValueDe {
            value: v,
            path: format!("{}[{i}]", self.parent.path),
            warnings: self.parent.warnings,
        };
        let path = child.path.clone();
        seed.deserialize(child).map(Some).map_err(|e| e.at(&path))
    }
}

struct MapDe<'p, 'a> {
    entries: std::vec::IntoIter<&'a (String, ConfigValue)>,
    pending: Option<(&'a str, &'a ConfigValue)>,
    parent: &'p ValueDe<'a>,
}

impl<'de, 'p, 'a> de::MapAccess<'de> for MapDe<'p, 'a> {
    type Error = ConfigError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((k.as_str(), v));
        seed.deserialize(k.as_str().into_deserializer()).map(Some)
    }
    fn next_value_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ConfigError> {
        let Some((k, v)) = self.pending.take() else {
            return Err(ConfigError::type_error("a value without a key"));
        };
        let child = self.parent.child(v, k);
        let path = child.path.clone();
        seed.deserialize(child).map_err(|e| e.at(&path))
    }
}

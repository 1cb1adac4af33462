//! serde's view of a [`ConfigValue`]: it tracks the path being read and warns about keys no
//! struct knows; its errors are [`ConfigError`]s.

use super::error::{one_of, ConfigError};
use super::value::ConfigValue;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use std::cell::RefCell;

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
                one_of(variants),
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

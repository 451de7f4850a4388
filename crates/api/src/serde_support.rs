//! Serde helpers used by the generated types (see build.rs) and the hand-written serde of the value types
//! whose JSON form is not their proto form: [`Quantity`], [`IntOrString`], [`FieldsV1`] and [`RawExtension`]
//! (raw JSON bytes in proto, the JSON value itself in JSON and YAML) and [`ExtraValue`] (a message in proto, whose maps cannot
//! hold lists; the list of strings itself in JSON and YAML).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::v1::{ExtraValue, FieldsV1, IntOrString, Quantity, RawExtension};

/// `skip_serializing_if` for scalars: Kubernetes omits empty values from its output.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `null` in a manifest (e.g. `creationTimestamp: null`) reads as the empty value.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A file mode: an integer, or octal text as YAML 1.1 reads an unquoted `0644` (Kubernetes' YAML
/// is 1.1; ours is 1.2, where `0644` is not a number).
pub fn file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<i32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a file mode (an integer such as 420, or octal such as 0644)")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<i32>, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<i32>, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i32>, E> {
            i32::try_from(v).map(Some).map_err(|_| E::custom(format!("mode {v} out of range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i32>, E> {
            i32::try_from(v).map(Some).map_err(|_| E::custom(format!("mode {v} out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<i32>, E> {
            let digits = v.strip_prefix("0o").or_else(|| v.strip_prefix('0')).filter(|d| !d.is_empty());
            digits
                .and_then(|d| i32::from_str_radix(d, 8).ok())
                .map(Some)
                .ok_or_else(|| E::invalid_type(de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(V)
}

impl Quantity {
    pub fn new(s: impl Into<String>) -> Self {
        Quantity { string: s.into() }
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.string)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity (a number or a string like \"500m\" or \"128Mi\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::new(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity::new(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl IntOrString {
    pub fn int(v: i32) -> Self {
        IntOrString { r#type: 0, int_val: v, str_val: String::new() }
    }
    pub fn string(v: impl Into<String>) -> Self {
        IntOrString { r#type: 1, int_val: 0, str_val: v.into() }
    }
    /// The number, when this holds one.
    pub fn as_int(&self) -> Option<i32> {
        (self.r#type == 0).then_some(self.int_val)
    }
    /// The string, when this holds one.
    pub fn as_str(&self) -> Option<&str> {
        (self.r#type == 1).then_some(self.str_val.as_str())
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.as_int() {
            Some(i) => write!(f, "{i}"),
            None => f.write_str(&self.str_val),
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_int() {
            Some(i) => s.serialize_i32(i),
            None => s.serialize_str(&self.str_val),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::string(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::int)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::int)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
        }
        d.deserialize_any(V)
    }
}

impl FieldsV1 {
    /// A set from its JSON text.
    pub fn from_json(raw: impl Into<Vec<u8>>) -> Self {
        FieldsV1 { raw: raw.into() }
    }
}

impl RawExtension {
    /// An embedded object from its JSON value.
    pub fn from_value(v: &serde_json::Value) -> Self {
        RawExtension { raw: serde_json::to_vec(v).unwrap_or_default() }
    }

    /// The JSON value held (`None` when empty or not JSON).
    pub fn value(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.raw).ok()
    }
}

/// The JSON value whose text `raw` holds (`empty` when there is none). Only valid JSON is ever stored (it
/// comes from JSON, or from the api-server's own encoding); bytes that are not JSON are written as a
/// string rather than lost.
fn serialize_raw_json<S: Serializer>(raw: &[u8], empty: serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
    if raw.is_empty() {
        return empty.serialize(s);
    }
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(&String::from_utf8_lossy(raw)),
    }
}

/// Any JSON value, kept as its compact JSON text (`null` is empty).
fn deserialize_raw_json<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    if v.is_null() {
        return Ok(Vec::new());
    }
    serde_json::to_vec(&v).map_err(de::Error::custom)
}

impl Serialize for FieldsV1 {
    /// The JSON object itself (`{}` when empty).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_raw_json(&self.raw, serde_json::Value::Object(Default::default()), s)
    }
}

impl<'de> Deserialize<'de> for FieldsV1 {
    /// Any JSON value; whether it is a valid field set is for the api-server's field manager to judge.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(FieldsV1 { raw: deserialize_raw_json(d)? })
    }
}

impl Serialize for RawExtension {
    /// The embedded JSON itself (`null` when empty, as Kubernetes writes a nil `Raw`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_raw_json(&self.raw, serde_json::Value::Null, s)
    }
}

impl<'de> Deserialize<'de> for RawExtension {
    /// Any JSON value (`null` is empty), kept as its JSON text.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawExtension { raw: deserialize_raw_json(d)? })
    }
}

impl ExtraValue {
    pub fn new<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        ExtraValue { items: items.into_iter().map(Into::into).collect() }
    }
}

impl Serialize for ExtraValue {
    /// The list of strings (`["a", "b"]`, `[]` when empty), as Kubernetes' `ExtraValue []string`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExtraValue {
    /// A list of strings; `null` is the empty list.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ExtraValue { items: Option::<Vec<String>>::deserialize(d)?.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn extra_values_are_lists_of_strings() {
        let extra: BTreeMap<String, ExtraValue> =
            serde_json::from_str(r#"{"scopes": ["a", "b"], "none": [], "null": null}"#).unwrap();
        assert_eq!(extra["scopes"], ExtraValue::new(["a", "b"]));
        assert!(extra["none"].items.is_empty() && extra["null"].items.is_empty());
        assert_eq!(serde_json::to_string(&extra).unwrap(), r#"{"none":[],"null":[],"scopes":["a","b"]}"#);
        for bad in [r#""a""#, "1", r#"{"items": ["a"]}"#, r#"[1]"#, r#"[["a"]]"#] {
            assert!(serde_json::from_str::<ExtraValue>(bad).is_err(), "{bad}");
        }
        let yaml: ExtraValue = serde_yaml::from_str("[x, 'y']").unwrap();
        assert_eq!(yaml.items, ["x", "y"]);
    }
}

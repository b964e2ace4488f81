//! Record values: a JSON-like tree that bincode can encode (serde_json's `Value`
//! cannot go through bincode, which is not self-describing).

use std::cmp::Ordering;

use bincode::{Decode, Encode};

/// One field value of a record.
#[derive(Debug, Clone, PartialEq, Encode, Decode, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
    Map(Record),
}

pub use crate::fields::Record;

impl Value {
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Text(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Null, an empty string or an empty list: what `ISBLANK` and `required` treat as absent.
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Text(s) => s.trim().is_empty(),
            Value::List(items) => items.is_empty(),
            _ => false,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Loose equality used by filters: numbers compare by value, and a number
    /// equals its decimal text (`"1" == 1`), as the reference engine does.
    pub fn loose_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => self.as_f64() == other.as_f64(),
            (Value::Text(s), n @ (Value::Int(_) | Value::Float(_))) | (n @ (Value::Int(_) | Value::Float(_)), Value::Text(s)) => {
                s.trim().parse::<f64>().ok() == n.as_f64()
            }
            _ => self == other,
        }
    }

    /// A total order across values: null first, then bools, numbers, text, lists, maps.
    /// Used for sorting and range comparisons of same-typed values.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Int(_) | Value::Float(_) => 2,
                Value::Text(_) => 3,
                Value::List(_) => 4,
                Value::Map(_) => 5,
            }
        }
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => self.as_f64().unwrap_or(0.0).total_cmp(&other.as_f64().unwrap_or(0.0)),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::List(a), Value::List(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let ord = x.total_cmp(y);
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.len().cmp(&b.len())
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// Comparison for range operators: only defined between comparable values.
    pub fn partial_compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => Some(self.total_cmp(other)),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Text(s), n @ (Value::Int(_) | Value::Float(_))) => s.trim().parse::<f64>().ok().map(|x| x.total_cmp(&n.as_f64().unwrap_or(0.0))),
            (n @ (Value::Int(_) | Value::Float(_)), Value::Text(s)) => s.trim().parse::<f64>().ok().map(|x| n.as_f64().unwrap_or(0.0).total_cmp(&x)),
            _ => None,
        }
    }

    /// Short human-readable type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Text(_) => "string",
            Value::List(_) => "array",
            Value::Map(_) => "object",
        }
    }
}

/// Records serialize straight to JSON (no intermediate `serde_json::Value`):
/// responses are written from the read model's own values.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
            Value::Float(_) => serializer.serialize_unit(),
            Value::Text(s) => serializer.serialize_str(s),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, v)?;
                }
                out.end()
            }
        }
    }
}

/// Converts a whole record to a JSON object.
pub fn record_to_json(record: &Record) -> serde_json::Value {
    serde_json::Value::Object(record.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_like_its_json_form() {
        let j = json!({"a": 1, "b": 2.5, "c": "x", "d": [true, null], "e": {"f": -3}});
        let v = Value::from_json(&j);
        assert_eq!(serde_json::to_value(&v).unwrap(), j);
    }

    #[test]
    fn json_round_trip() {
        let j = json!({"a": 1, "b": 2.5, "c": "x", "d": [true, null], "e": {"f": -3}});
        assert_eq!(Value::from_json(&j).to_json(), j);
    }

    #[test]
    fn loose_equality_and_order() {
        assert!(Value::Text("1".into()).loose_eq(&Value::Int(1)));
        assert!(Value::Int(2).loose_eq(&Value::Float(2.0)));
        assert!(!Value::Text("a".into()).loose_eq(&Value::Int(1)));
        assert_eq!(Value::Null.total_cmp(&Value::Int(0)), Ordering::Less);
        assert_eq!(Value::Int(3).total_cmp(&Value::Float(2.5)), Ordering::Greater);
        assert_eq!(Value::Null.partial_compare(&Value::Int(1)), None);
    }
}

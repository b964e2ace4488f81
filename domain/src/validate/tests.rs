//! Value rules for every field type, table-driven: for each type, values that
//! pass (with their normalised form) and values that fail (with the error code).

use serde_json::{json, Value as Json};

use super::check_value;
use crate::error::ErrorCode;
use crate::metadata::{FieldDef, FieldType};
use crate::value::Value;

fn field(definition: Json) -> FieldDef {
    FieldDef::from_json("f", &definition).unwrap_or_else(|e| panic!("{definition}: {e}"))
}

fn options(extra: Json) -> Json {
    let mut base = json!({"options": [{"label": "Open", "value": "open"}, {"label": "Closed", "value": "closed", "default": true}]});
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base
}

fn with_type(t: &str, mut extra: Json) -> Json {
    extra.as_object_mut().unwrap().insert("type".into(), json!(t));
    extra
}

/// (definition, accepted values, rejected values with the expected code)
type Row = (Json, Vec<Json>, Vec<(Json, ErrorCode)>);

fn table() -> Vec<Row> {
    use ErrorCode::*;
    vec![
        (
            with_type("text", json!({"maxLength": 5, "minLength": 2})),
            vec![json!("abc"), json!("héllo")],
            vec![(json!("toolong"), ValueTooLong), (json!("a"), ValueTooShort), (json!(5), InvalidFormat)],
        ),
        (with_type("textarea", json!({"maxLength": 3})), vec![json!("a\nb")], vec![(json!("abcd"), ValueTooLong), (json!(true), InvalidFormat)]),
        (with_type("email", json!({})), vec![json!("a@b.co")], vec![(json!("a@b"), InvalidFormat), (json!("nope"), InvalidFormat)]),
        (with_type("url", json!({})), vec![json!("https://x.example/p?q=1")], vec![(json!("x.example"), InvalidFormat), (json!("http://"), InvalidFormat)]),
        (
            with_type("phone", json!({})),
            vec![json!("+1-415-555-0100"), json!("(030) 123 456 ext 7")],
            vec![(json!("call me"), InvalidFormat), (json!("1"), InvalidFormat)],
        ),
        (with_type("password", json!({"minLength": 8})), vec![json!("s3cret-pass")], vec![(json!("short"), ValueTooShort)]),
        (with_type("markdown", json!({})), vec![json!("# title")], vec![(json!([1]), InvalidFormat)]),
        (with_type("html", json!({})), vec![json!("<b>x</b>")], vec![(json!({}), InvalidFormat)]),
        (with_type("richtext", json!({})), vec![json!("<p>x</p>")], vec![(json!(1.5), InvalidFormat)]),
        (
            with_type("number", json!({"min": 0, "max": 10, "scale": 1})),
            vec![json!(0), json!(9.5)],
            vec![(json!(11), ValueOutOfRange), (json!(-1), ValueOutOfRange), (json!(1.25), InvalidFormat), (json!("5"), InvalidFormat)],
        ),
        (with_type("number", json!({"precision": 4, "scale": 2})), vec![json!(99.99)], vec![(json!(100.5), ValueOutOfRange)]),
        (with_type("currency", json!({})), vec![json!(1999.99)], vec![(json!(1.999), InvalidFormat), (json!("$5"), InvalidFormat)]),
        (with_type("percent", json!({"min": 0, "max": 100})), vec![json!(12.5)], vec![(json!(101), ValueOutOfRange)]),
        (
            with_type("date", json!({})),
            vec![json!("2026-02-28")],
            vec![(json!("2026-02-30"), InvalidFormat), (json!("28/02/2026"), InvalidFormat), (json!("2026-02-28T25:00:00Z"), InvalidFormat)],
        ),
        (
            with_type("datetime", json!({})),
            vec![json!("2026-11-24T11:17:03Z"), json!("2026-11-24T12:17:03+01:00")],
            vec![(json!("tomorrow"), InvalidFormat), (json!(17), InvalidFormat)],
        ),
        (with_type("time", json!({})), vec![json!("09:30"), json!("23:59:59")], vec![(json!("24:00"), InvalidFormat), (json!("9:30"), InvalidFormat)]),
        (with_type("boolean", json!({})), vec![json!(true), json!(false)], vec![(json!("true"), InvalidFormat), (json!(1), InvalidFormat)]),
        (with_type("toggle", json!({})), vec![json!(false)], vec![(json!("on"), InvalidFormat)]),
        (
            with_type("select", options(json!({}))),
            vec![json!("open"), json!("Closed")],
            vec![(json!("other"), InvalidFormat), (json!(["open"]), InvalidFormat)],
        ),
        (
            with_type("select", options(json!({"multiple": true}))),
            vec![json!(["open", "closed"])],
            vec![(json!("open"), InvalidFormat), (json!(["open", "open"]), InvalidFormat)],
        ),
        (
            with_type("multiselect", options(json!({}))),
            vec![json!(["open"]), json!([])],
            vec![(json!(["nope"]), InvalidFormat), (json!("open"), InvalidFormat)],
        ),
        (with_type("radio", options(json!({}))), vec![json!("closed")], vec![(json!("maybe"), InvalidFormat)]),
        (with_type("checkboxes", options(json!({}))), vec![json!(["open", "closed"])], vec![(json!(["open", "x"]), InvalidFormat)]),
        (with_type("lookup", json!({"reference": "account"})), vec![json!("acc-1")], vec![(json!(""), InvalidReference), (json!(12), InvalidFormat)]),
        (with_type("lookup", json!({"reference": "account", "multiple": true})), vec![json!(["a", "b"])], vec![(json!("a"), InvalidFormat)]),
        (with_type("master_detail", json!({"reference": "account"})), vec![json!("acc-1")], vec![(json!({"id": 1}), InvalidFormat)]),
        (with_type("tree", json!({"reference": "category"})), vec![json!("c1")], vec![(json!(false), InvalidFormat)]),
        (with_type("image", json!({})), vec![json!("https://img/x.png")], vec![(json!(3), InvalidFormat)]),
        (with_type("file", json!({})), vec![json!("file-1"), json!({"url": "https://f/x.pdf", "size": 3})], vec![(json!({"size": 3}), InvalidFormat)]),
        (with_type("avatar", json!({})), vec![json!("https://a/me.png")], vec![(json!([]), InvalidFormat)]),
        (with_type("video", json!({})), vec![json!("vid-1")], vec![(json!(1), InvalidFormat)]),
        (with_type("audio", json!({})), vec![json!("aud-1")], vec![(json!(1), InvalidFormat)]),
        (with_type("formula", json!({"expression": "1 + 1"})), vec![], vec![(json!(2), InvalidField)]),
        (with_type("summary", json!({})), vec![], vec![(json!(2), InvalidField)]),
        (with_type("autonumber", json!({})), vec![], vec![(json!("A-1"), InvalidField)]),
        (
            with_type("location", json!({})),
            vec![json!({"latitude": 52.5, "longitude": 13.4}), json!({"latitude": 0, "longitude": 0, "altitude": 30})],
            vec![
                (json!({"latitude": 91, "longitude": 0}), ValueOutOfRange),
                (json!({"latitude": 1}), InvalidFormat),
                (json!({"latitude": 1, "longitude": 2, "x": 1}), InvalidFormat),
            ],
        ),
        (
            with_type("address", json!({})),
            vec![json!({"street": "1 Main", "city": "X", "postalCode": "123"})],
            vec![(json!({"zip": "1"}), InvalidFormat), (json!({"city": 5}), InvalidFormat), (json!("1 Main St"), InvalidFormat)],
        ),
        (with_type("code", json!({"language": "js"})), vec![json!("let a = 1;")], vec![(json!(1), InvalidFormat)]),
        (with_type("json", json!({})), vec![json!({"any": [1, "thing"]}), json!(3), json!("s")], vec![]),
        (
            with_type("color", json!({"colorFormat": "hex"})),
            vec![json!("#A0B1C2"), json!("#fff")],
            vec![(json!("red"), InvalidFormat), (json!("rgb(1,2,3)"), InvalidFormat)],
        ),
        (with_type("color", json!({})), vec![json!("rgb(1, 2, 3)"), json!("hsl(120, 50%, 50%)")], vec![(json!("#ggg"), InvalidFormat)]),
        (with_type("rating", json!({"allowHalf": true})), vec![json!(4.5), json!(0)], vec![(json!(5.5), ValueOutOfRange), (json!(4.25), InvalidFormat)]),
        (with_type("rating", json!({"maxRating": 10})), vec![json!(10)], vec![(json!(3.5), InvalidFormat)]),
        (with_type("slider", json!({"min": 0, "max": 10, "step": 2})), vec![json!(4)], vec![(json!(3), InvalidFormat), (json!(12), ValueOutOfRange)]),
        (with_type("signature", json!({})), vec![json!("data:image/png;base64,AAA")], vec![(json!(1), InvalidFormat)]),
        (with_type("qrcode", json!({})), vec![json!("https://x")], vec![(json!(null), InvalidFormat)]),
        (with_type("progress", json!({})), vec![json!(55)], vec![(json!(101), ValueOutOfRange), (json!(-1), ValueOutOfRange)]),
        (with_type("tags", json!({})), vec![json!(["a", "b c"])], vec![(json!("a"), InvalidFormat), (json!([""]), InvalidFormat), (json!([1]), InvalidFormat)]),
        (
            with_type("vector", json!({"vectorConfig": {"dimensions": 3}})),
            vec![json!([0.1, 0.2, 0.3])],
            vec![(json!([1, 2]), InvalidFormat), (json!([1, "a", 3]), InvalidFormat)],
        ),
    ]
}

#[test]
fn every_field_type_is_covered() {
    let covered: Vec<String> = table().iter().map(|(d, ..)| d["type"].as_str().unwrap().to_string()).collect();
    for t in FieldType::ALL {
        assert!(covered.iter().any(|c| c == t.as_str()), "no value-rule cases for {}", t.as_str());
    }
}

#[test]
fn value_rules_per_field_type() {
    for (definition, accepted, rejected) in table() {
        let f = field(definition.clone());
        for value in accepted {
            if let Err(e) = check_value(&f, &value) {
                panic!("{definition}: {value} should pass, got {e:?}");
            }
        }
        for (value, code) in rejected {
            if value.is_null() {
                // null is the record's business (required), not the value's.
                assert_eq!(check_value(&f, &value), Ok(Value::Null));
                continue;
            }
            match check_value(&f, &value) {
                Ok(v) => panic!("{definition}: {value} should fail, got {v:?}"),
                Err(e) => {
                    assert_eq!(e.code, code, "{definition}: {value}: {}", e.message);
                    assert_eq!(e.field, "f");
                    assert!(e.message.contains('f'), "message names the field: {}", e.message);
                }
            }
        }
    }
}

#[test]
fn values_are_normalised() {
    let dt = field(json!({"type": "datetime"}));
    assert_eq!(check_value(&dt, &json!("2026-11-24T12:17:03+01:00")).unwrap(), Value::Text("2026-11-24T11:17:03.000Z".into()));
    let select = field(options(json!({"type": "select"})));
    assert_eq!(check_value(&select, &json!("OPEN")).unwrap(), Value::Text("open".into()));
    assert_eq!(select.default_option(), Some("closed"));
    let date = field(json!({"type": "date"}));
    assert_eq!(check_value(&date, &json!("2026-12-24T08:25:05.854Z")).unwrap(), Value::Text("2026-12-24".into()));
}

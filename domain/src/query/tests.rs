//! Query parsing tests: every filter form normalises to the same tree;
//! unknown operators and fields are rejected with their names.

use serde_json::json;

use super::*;
use crate::metadata::{decide_metadata, evolve_catalog, Catalog, MetadataCommand};
use crate::value::Value;

fn cond(field: &str, op: Op, value: serde_json::Value) -> Filter {
    Filter::Cond(Condition { field: field.into(), op, value: Operand::Value(Value::from_json(&value)) })
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let defs = [
        json!({"name": "account", "fields": {"name": {"type": "text"}, "industry": {"type": "text"}, "billing": {"type": "address"}}}),
        json!({"name": "deal", "fields": {"name": {"type": "text"}, "amount": {"type": "currency"}, "stage": {"type": "text"},
            "account": {"type": "lookup", "reference": "account"}, "close": {"type": "date"}, "open": {"type": "date"}, "won": {"type": "boolean"}}}),
    ];
    for definition in defs {
        for event in decide_metadata(&catalog, &MetadataCommand::put_one(definition, None)).unwrap() {
            evolve_catalog(&mut catalog, &event).unwrap();
        }
    }
    catalog
}

#[test]
fn every_filter_form_normalises_to_one_tree() {
    let expected = Filter::Or(vec![cond("a", Op::Eq, json!(1)), Filter::And(vec![cond("b", Op::Gt, json!(2)), cond("c", Op::In, json!(["x", "y"]))])]);
    let forms = [
        json!({"$or": [{"a": 1}, {"b": {"$gt": 2}, "c": {"$in": ["x", "y"]}}]}),
        json!(["or", ["a", "=", 1], ["and", ["b", ">", 2], ["c", "in", ["x", "y"]]]]),
        json!([["a", "==", 1], "or", ["b", "gt", 2], "and", ["c", "IN", ["x", "y"]]]),
        json!([["a", "eq", 1], "or", ["b", "greater_than", 2], ["c", "in", ["x", "y"]]]),
        json!({"type": "logical", "operator": "or", "conditions": [
            {"type": "comparison", "field": "a", "operator": "=", "value": 1},
            {"type": "logical", "operator": "and", "conditions": [
                {"type": "comparison", "field": "b", "operator": ">", "value": 2},
                {"type": "comparison", "field": "c", "operator": "in", "value": ["x", "y"]}]}]}),
    ];
    for form in forms {
        assert_eq!(parse_filter(&form).unwrap_or_else(|e| panic!("{form}: {e}")), expected, "{form}");
    }
}

#[test]
fn tuples_lists_and_special_operators() {
    assert_eq!(parse_filter(&json!(["a", "=", 1])).unwrap(), cond("a", Op::Eq, json!(1)));
    assert_eq!(parse_filter(&json!([["a", "=", 1], ["b", "!=", 2]])).unwrap(), Filter::And(vec![cond("a", Op::Eq, json!(1)), cond("b", Op::Ne, json!(2))]));
    assert_eq!(parse_filter(&json!(["a", "is_null", null])).unwrap(), cond("a", Op::Null, json!(true)));
    assert_eq!(parse_filter(&json!(["a", "is_not_null"])).unwrap(), cond("a", Op::Null, json!(false)));
    assert_eq!(parse_filter(&json!(["a", "not_in", [1]])).unwrap(), cond("a", Op::Nin, json!([1])));
    assert_eq!(parse_filter(&json!(["a", "like", "%x%"])).unwrap(), cond("a", Op::Like, json!("%x%")));
    // Without a wildcard, like is a case-insensitive substring match.
    assert_eq!(parse_filter(&json!(["a", "like", "x"])).unwrap(), cond("a", Op::Contains, json!("x")));
    assert_eq!(parse_filter(&json!({"a": {"$like": "x"}})).unwrap(), cond("a", Op::Contains, json!("x")));
    assert_eq!(parse_filter(&json!(["a", "between", [1, 5]])).unwrap(), cond("a", Op::Between, json!([1, 5])));
    assert_eq!(parse_filter(&json!({"a": {"$startsWith": "x"}})).unwrap(), cond("a", Op::StartsWith, json!("x")));
    assert_eq!(parse_filter(&json!({"a": {"$regex": "^x", "$options": "i"}})).unwrap(), cond("a", Op::Regex, json!("(?i)^x")));
    assert_eq!(parse_filter(&json!({"account": {"industry": "tech"}})).unwrap(), cond("account.industry", Op::Eq, json!("tech")));
    assert_eq!(
        parse_filter(&json!({"close": {"$gt": {"$field": "open"}}})).unwrap(),
        Filter::Cond(Condition { field: "close".into(), op: Op::Gt, value: Operand::Field("open".into()) })
    );
    assert_eq!(parse_filter(&json!({"$not": {"a": 1}})).unwrap(), Filter::Not(Box::new(cond("a", Op::Eq, json!(1)))));
    assert_eq!(parse_filter(&json!({})).unwrap(), Filter::And(vec![]));
    assert_eq!(parse_filter(&json!([])).unwrap(), Filter::And(vec![]));
}

#[test]
fn bad_filters_are_rejected_with_names() {
    let cases = [
        (json!(["a", "approximately", 1]), "unknown operator 'approximately'"),
        (json!({"a": {"$near": 1}}), "unknown operator '$near'"),
        (json!({"$xor": []}), "unknown logical operator '$xor'"),
        (json!(["a", "in", 1]), "takes a list"),
        (json!(["a", "between", [1]]), "two values"),
        (json!([["a", "=", 1], "or"]), "cannot end with a connector"),
        (json!([["a", "=", 1], 5]), "unexpected 5"),
        (json!({"a": {"$regex": "("}}), "bad regex"),
        (json!("a = 1"), "must be an object or an array"),
        (json!(["a", "=", 1, 2]), "got 4 elements"),
    ];
    for (form, needle) in cases {
        let message = parse_filter(&form).expect_err(&form.to_string()).to_string();
        assert!(message.contains(needle), "{form}: '{message}' lacks '{needle}'");
    }
}

#[test]
fn sorts_in_every_form() {
    let expected = vec![SortNode { field: "a".into(), order: SortOrder::Asc }, SortNode { field: "b".into(), order: SortOrder::Desc }];
    for form in [
        json!("a,-b"),
        json!("a asc, b desc"),
        json!([{"field": "a"}, {"field": "b", "order": "desc"}]),
        json!([["a", "asc"], ["b", "desc"]]),
        json!({"a": 1, "b": -1}),
        json!("[{\"field\":\"a\",\"order\":\"asc\"},{\"field\":\"b\",\"order\":\"desc\"}]"),
        json!([{"field": "a", "direction": "asc"}, "-b"]),
    ] {
        assert_eq!(parse_sort(&form).unwrap_or_else(|e| panic!("{form}: {e}")), expected, "{form}");
    }
    assert!(parse_sort(&json!({"a": "sideways"})).unwrap_err().to_string().contains("'a'"));
}

#[test]
fn query_bodies_and_checks() {
    let catalog = catalog();
    let body = json!({"where": {"stage": "won", "account.industry": "tech"}, "fields": ["name", "amount"], "orderBy": [{"field": "amount", "order": "desc"}],
        "limit": 20, "offset": 40, "expand": {"account": {"fields": ["name"]}}, "groupBy": ["stage"],
        "aggregations": [{"function": "sum", "field": "amount", "alias": "total"}, {"method": "count"}], "search": {"query": "acme", "fields": ["name"], "operator": "and"}});
    let mut query = parse_query("deal", &body).unwrap();
    check_query(&mut query, &catalog).unwrap();
    assert_eq!(query.limit, Some(20));
    assert_eq!(query.offset, 40);
    assert_eq!(query.expand["account"].object, "account");
    assert_eq!(query.aggregations[1].alias, "count_all");
    assert!(query.search.as_ref().unwrap().match_all);
    let mut aliased =
        parse_query("deal", &json!({"filter": ["stage", "=", "won"], "top": 5, "skip": 1, "select": "name,amount", "populate": "account", "sort": "-amount"}))
            .unwrap();
    check_query(&mut aliased, &catalog).unwrap();
    assert_eq!((aliased.limit, aliased.offset), (Some(5), 1));
    assert_eq!(aliased.fields, Some(vec!["name".to_string(), "amount".to_string()]));

    let errors = [
        (json!({"where": {"ghost": 1}}), "unknown field 'ghost' on 'deal'"),
        (json!({"where": {"account.ghost": 1}}), "unknown field 'ghost' on 'account'"),
        (json!({"orderBy": "ghost"}), "unknown field 'ghost'"),
        (json!({"fields": ["ghost"]}), "unknown field 'ghost'"),
        (json!({"expand": ["name"]}), "cannot expand 'name'"),
        (json!({"aggregations": [{"function": "sum", "field": "name"}]}), "numeric"),
        (json!({"aggregations": [{"function": "median", "field": "amount"}]}), "unknown aggregation function 'median'"),
        (json!({"limit": -1}), "whole number"),
        (json!({"limit": 100000}), "maximum"),
        (json!({"where": {}, "filter": {}}), "both set"),
        (json!({"bogus": 1}), "unknown query key 'bogus'"),
    ];
    for (body, needle) in errors {
        let result = parse_query("deal", &body).and_then(|mut q| check_query(&mut q, &catalog));
        let message = result.expect_err(&body.to_string()).to_string();
        assert!(message.contains(needle), "{body}: '{message}' lacks '{needle}'");
    }
    let mut with_id = parse_query("deal", &json!({"where": {"_id": "d1"}})).unwrap();
    check_query(&mut with_id, &catalog).unwrap();
    assert_eq!(with_id.filter, Some(cond("id", Op::Eq, json!("d1"))));
    assert!(check_query(&mut Query::new("ghost"), &catalog).unwrap_err().to_string().contains("ghost"));
}

#[test]
fn url_params() {
    let catalog = catalog();
    let deal = catalog.get("deal").unwrap().clone();
    let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let query = parse_url_params(
        &deal,
        &params(&[("top", "10"), ("skip", "5"), ("sort", "-amount"), ("filters", "[[\"stage\",\"=\",\"won\"]]"), ("won", "true"), ("amount", "12.5")]),
    )
    .unwrap();
    assert_eq!((query.limit, query.offset), (Some(10), 5));
    assert_eq!(
        query.filter,
        Some(Filter::And(vec![cond("stage", Op::Eq, json!("won")), cond("won", Op::Eq, json!(true)), cond("amount", Op::Eq, json!(12.5))]))
    );
    for (pairs, needle) in [
        (params(&[("filter", "{}"), ("where", "{}")]), "both set"),
        (params(&[("$apply", "x")]), "unsupported query parameter '$apply'"),
        (params(&[("ghost", "1")]), "unknown query parameter 'ghost'"),
        (params(&[("filter", "{bad json")]), "not valid JSON"),
        (params(&[("top", "ten")]), "whole number"),
    ] {
        let message = parse_url_params(&deal, &pairs).expect_err(needle).to_string();
        assert!(message.contains(needle), "'{message}' lacks '{needle}'");
    }
}

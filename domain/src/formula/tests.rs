//! Formula tests: the expressions of the example apps and the edge cases.

use super::*;
use crate::time::Timestamp;
use crate::value::{Record, Value};

fn run(source: &str, record: &[(&str, Value)], previous: Option<&[(&str, Value)]>) -> Value {
    let expr = parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let record: Record = record.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let previous: Option<Record> = previous.map(|p| p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
    let ctx = RecordContext { record: &record, previous: previous.as_ref(), now: Timestamp::parse("2026-11-24T10:00:00Z").unwrap() };
    eval(&expr, &ctx)
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

/// (expression, record fields, expected value)
type Case = (&'static str, Vec<(&'static str, Value)>, Value);

#[test]
fn example_app_conditions() {
    let cases: Vec<Case> = vec![
        ("annual_revenue < 0", vec![("annual_revenue", Value::Int(-5))], Value::Bool(true)),
        ("annual_revenue < 0", vec![], Value::Bool(false)),
        ("status = \"closed\" AND ISBLANK(resolution)", vec![("status", t("closed"))], Value::Bool(true)),
        ("status = \"closed\" AND ISBLANK(resolution)", vec![("status", t("closed")), ("resolution", t("done"))], Value::Bool(false)),
        ("is_escalated = true AND ISBLANK(escalation_reason)", vec![("is_escalated", Value::Bool(true))], Value::Bool(true)),
        (
            "MONTH_DIFF(end_date, start_date) != contract_term_months",
            vec![("end_date", t("2027-01-15")), ("start_date", t("2026-01-15")), ("contract_term_months", Value::Int(12))],
            Value::Bool(false),
        ),
        ("close_date < TODAY() AND stage != \"closed_won\"", vec![("close_date", t("2026-01-01")), ("stage", t("prospecting"))], Value::Bool(true)),
        ("IF(num_sent > 0, (num_responses / num_sent) * 100, 0)", vec![("num_sent", Value::Int(200)), ("num_responses", Value::Int(50))], Value::Int(25)),
        ("IF(num_sent > 0, (num_responses / num_sent) * 100, 0)", vec![], Value::Int(0)),
        ("CONCAT(salutation, \" \", first_name)", vec![("salutation", t("mr")), ("first_name", t("John"))], t("mr John")),
        ("discount > 100", vec![("discount", Value::Float(100.5))], Value::Bool(true)),
        ("a & '-' & b", vec![("a", t("x")), ("b", Value::Int(2))], t("x-2")),
        ("NOT(x) || y", vec![("x", Value::Bool(true)), ("y", Value::Bool(false))], Value::Bool(false)),
        ("-x + 2 * 3", vec![("x", Value::Int(1))], Value::Int(5)),
    ];
    for (source, record, expected) in cases {
        assert_eq!(run(source, &record, None), expected, "{source}");
    }
}

#[test]
fn ischanged_and_prior_value() {
    let previous = [("company", t("Old")), ("id", t("1"))];
    assert_eq!(run("ISCHANGED(company, email)", &[("company", t("New"))], Some(&previous)), Value::Bool(true));
    assert_eq!(run("ISCHANGED(company)", &[("company", t("Old"))], Some(&previous)), Value::Bool(false));
    assert_eq!(run("ISCHANGED(company)", &[("company", t("New"))], None), Value::Bool(false));
    assert_eq!(run("PRIORVALUE(company)", &[], Some(&previous)), t("Old"));
    assert_eq!(run("ISNEW()", &[], None), Value::Bool(true));
}

#[test]
fn parse_errors_name_the_problem() {
    assert!(parse("FOO(1)").unwrap_err().message.contains("unknown function FOO"));
    assert!(parse("IF(1)").unwrap_err().message.contains("IF takes"));
    assert!(parse("a = ").is_err());
    assert!(parse("\"open").unwrap_err().message.contains("unterminated"));
    assert!(parse("a # b").is_err());
    assert_eq!(parse("a.b + c").unwrap().fields(), vec!["a.b".to_string(), "c".to_string()]);
}

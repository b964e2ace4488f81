//! Operator names of every filter form, mapped to [`Op`].

use super::ast::Op;

/// Resolves an operator name, case-insensitively: Mongo style (`$gte`), tuple
/// style (`>=`, `in`, `not_in`, `like`, `is_null`) and the 17.x aliases.
/// Returns the operator and, for the valueless `is_null`/`is_not_null`, the implied value.
pub fn resolve(name: &str) -> Option<(Op, Option<bool>)> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix('$').unwrap_or(&lower);
    let op = match bare {
        "eq" | "=" | "==" | "equals" => Op::Eq,
        "ne" | "!=" | "<>" | "neq" | "not_equals" | "notequals" => Op::Ne,
        "gt" | ">" | "greater_than" | "after" => Op::Gt,
        "gte" | ">=" | "greater_than_or_equal" => Op::Gte,
        "lt" | "<" | "less_than" | "before" => Op::Lt,
        "lte" | "<=" | "less_than_or_equal" => Op::Lte,
        "in" => Op::In,
        "nin" | "not_in" | "notin" | "not in" => Op::Nin,
        "between" => Op::Between,
        "contains" => Op::Contains,
        "notcontains" | "not_contains" => Op::NotContains,
        "startswith" | "starts_with" => Op::StartsWith,
        "endswith" | "ends_with" => Op::EndsWith,
        "like" => Op::Like,
        "null" => Op::Null,
        "exists" => Op::Exists,
        "regex" => Op::Regex,
        "is_null" | "isnull" => return Some((Op::Null, Some(true))),
        "is_not_null" | "isnotnull" | "not_null" => return Some((Op::Null, Some(false))),
        _ => return None,
    };
    Some((op, None))
}

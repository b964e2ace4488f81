//! Autonumber formats: `CASE-{0000}`, `INV-{YYYY}-{0000}`, `{0}`.

use crate::time::Timestamp;

/// Renders `format` for sequence number `seq` at time `now`. A run of zeros in
/// braces pads the number to that width; `{YYYY}`, `{YY}`, `{MM}`, `{DD}` are date parts.
pub fn format_autonumber(format: &str, seq: u64, now: Timestamp) -> String {
    let date = now.to_date_string();
    let mut out = String::new();
    let mut rest = format;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let token = &rest[start + 1..start + len];
        match token {
            "YYYY" => out.push_str(&date[..4]),
            "YY" => out.push_str(&date[2..4]),
            "MM" => out.push_str(&date[5..7]),
            "DD" => out.push_str(&date[8..10]),
            zeros if !zeros.is_empty() && zeros.chars().all(|c| c == '0') => {
                out.push_str(&format!("{seq:0width$}", width = zeros.len()));
            }
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

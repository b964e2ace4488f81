//! Time dimensions: truncating a moment to a granularity (UTC), and the
//! relative date ranges of the analytics protocol.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use domain::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Granularity {
    pub const ALL: [&'static str; 8] = ["second", "minute", "hour", "day", "week", "month", "quarter", "year"];

    pub fn parse(name: &str) -> Option<Granularity> {
        Some(match name {
            "second" => Granularity::Second,
            "minute" => Granularity::Minute,
            "hour" => Granularity::Hour,
            "day" => Granularity::Day,
            "week" => Granularity::Week,
            "month" => Granularity::Month,
            "quarter" => Granularity::Quarter,
            "year" => Granularity::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Granularity::ALL[self as usize]
    }

    /// The PostgreSQL `date_trunc` unit.
    pub fn sql_unit(self) -> &'static str {
        self.name()
    }
}

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_micros()).unwrap_or_default()
}

/// The start of the bucket holding `micros` (UTC; weeks start on Monday).
pub fn truncate(micros: i64, granularity: Granularity) -> i64 {
    let t = at(micros);
    let date = t.date_naive();
    match granularity {
        Granularity::Second => micros - micros.rem_euclid(1_000_000),
        Granularity::Minute => micros - micros.rem_euclid(60_000_000),
        Granularity::Hour => Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), t.hour(), 0, 0).single().map(|d| d.timestamp_micros()).unwrap_or(micros),
        Granularity::Day => midnight(date),
        Granularity::Week => midnight(date - Duration::days(date.weekday().num_days_from_monday() as i64)),
        Granularity::Month => midnight(date.with_day(1).unwrap_or(date)),
        Granularity::Quarter => midnight(NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1).unwrap_or(date)),
        Granularity::Year => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date)),
    }
}

/// `[from, to)` in microseconds for a date range: `[from, to]` dates
/// (inclusive; datetimes as given), or a relative range as of `now`:
/// `today`, `yesterday`, `this week|month|quarter|year`, `last week|month|quarter|year`,
/// `last N days|weeks|months`.
pub fn date_range(range: &serde_json::Value, now: Timestamp) -> Result<(i64, i64), String> {
    match range {
        serde_json::Value::Array(bounds) if bounds.len() == 2 => {
            let bound = |v: &serde_json::Value, end: bool| -> Result<i64, String> {
                let text = v.as_str().ok_or("dateRange bounds are ISO dates or datetimes")?;
                let t = Timestamp::parse(text).ok_or_else(|| format!("'{text}' is not an ISO date or datetime"))?.micros();
                // A bare date as the upper bound includes that whole day.
                Ok(if end && text.len() == 10 {
                    t + 86_400_000_000
                } else if end {
                    t + 1
                } else {
                    t
                })
            };
            Ok((bound(&bounds[0], false)?, bound(&bounds[1], true)?))
        }
        serde_json::Value::String(text) => relative(text, now),
        other => Err(format!("dateRange must be [from, to] or a relative range like \"Last 7 days\", got {other}")),
    }
}

fn relative(text: &str, now: Timestamp) -> Result<(i64, i64), String> {
    let lower = text.trim().to_lowercase();
    let today = midnight(at(now.micros()).date_naive());
    let day = 86_400_000_000i64;
    let start_of = |g: Granularity| truncate(now.micros(), g);
    let shift_months = |micros: i64, months: i32| -> i64 {
        let date = at(micros).date_naive();
        let total = date.year() * 12 + date.month0() as i32 + months;
        midnight(NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1).unwrap_or(date))
    };
    let words: Vec<&str> = lower.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["today"] => (today, today + day),
        ["yesterday"] => (today - day, today),
        ["this", "week"] => (start_of(Granularity::Week), start_of(Granularity::Week) + 7 * day),
        ["this", "month"] => (start_of(Granularity::Month), shift_months(start_of(Granularity::Month), 1)),
        ["this", "quarter"] => (start_of(Granularity::Quarter), shift_months(start_of(Granularity::Quarter), 3)),
        ["this", "year"] => (start_of(Granularity::Year), shift_months(start_of(Granularity::Year), 12)),
        ["last", "week"] => (start_of(Granularity::Week) - 7 * day, start_of(Granularity::Week)),
        ["last", "month"] => (shift_months(start_of(Granularity::Month), -1), start_of(Granularity::Month)),
        ["last", "quarter"] => (shift_months(start_of(Granularity::Quarter), -3), start_of(Granularity::Quarter)),
        ["last", "year"] => (shift_months(start_of(Granularity::Year), -12), start_of(Granularity::Year)),
        ["last", n, unit] => {
            let n: i64 = n.parse().map_err(|_| format!("'{text}': expected a number of days, weeks or months"))?;
            match unit.trim_end_matches('s') {
                // "Last 7 days": the 7 days up to and including today.
                "day" => (today - (n - 1) * day, today + day),
                "week" => (today - (7 * n - 1) * day, today + day),
                "month" => (shift_months(today, -(n as i32)) + (today - start_of(Granularity::Month)), today + day),
                other => return Err(format!("'{text}': unknown unit '{other}'")),
            }
        }
        _ => return Err(format!("unknown date range '{text}' (use [from, to], Today, Yesterday, This/Last week|month|quarter|year, Last N days)")),
    })
}

/// A bucket start as the ISO string the protocol shows.
pub fn bucket_label(micros: i64) -> String {
    Timestamp::from_micros(micros).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> i64 {
        Timestamp::parse(text).unwrap().micros()
    }

    #[test]
    fn truncation() {
        let x = t("2026-11-26T15:42:10.5Z");
        assert_eq!(truncate(x, Granularity::Day), t("2026-11-26"));
        assert_eq!(truncate(x, Granularity::Week), t("2026-11-23"), "Monday");
        assert_eq!(truncate(x, Granularity::Month), t("2026-11-01"));
        assert_eq!(truncate(x, Granularity::Quarter), t("2026-10-01"));
        assert_eq!(truncate(x, Granularity::Year), t("2026-01-01"));
        assert_eq!(truncate(x, Granularity::Hour), t("2026-11-26T15:00:00Z"));
    }

    #[test]
    fn ranges() {
        let now = Timestamp::parse("2026-11-26T15:00:00Z").unwrap();
        assert_eq!(date_range(&serde_json::json!("Last 7 days"), now).unwrap(), (t("2026-11-20"), t("2026-11-27")));
        assert_eq!(date_range(&serde_json::json!("last month"), now).unwrap(), (t("2026-10-01"), t("2026-11-01")));
        assert_eq!(date_range(&serde_json::json!(["2026-01-01", "2026-01-31"]), now).unwrap(), (t("2026-01-01"), t("2026-02-01")));
        assert!(date_range(&serde_json::json!("someday"), now).is_err());
    }
}

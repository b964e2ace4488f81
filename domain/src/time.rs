//! Timestamps as microseconds since the Unix epoch, and their ISO-8601 form.
//!
//! The domain never reads a clock: callers pass `now` in.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// `2026-11-24T11:17:03.123Z`: the form every datetime value takes in records.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The calendar date (UTC) as `YYYY-MM-DD`.
    pub fn to_date_string(self) -> String {
        self.to_datetime().date_naive().format("%Y-%m-%d").to_string()
    }

    /// Parses an ISO-8601 datetime; a value without an offset is taken as UTC,
    /// and a bare date as its midnight UTC.
    pub fn parse(text: &str) -> Option<Timestamp> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(Timestamp(dt.with_timezone(&Utc).timestamp_micros()));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Some(Timestamp(naive.and_utc().timestamp_micros()));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Some(Timestamp(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros()));
        }
        None
    }

    pub fn plus_days(self, days: i64) -> Timestamp {
        Timestamp(self.0 + days * 86_400_000_000)
    }
}

/// Parses a strict `YYYY-MM-DD` calendar date.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp::parse("2026-11-24T11:17:03.123Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T11:17:03.123Z");
        assert_eq!(t.to_date_string(), "2026-11-24");
        let local = Timestamp::parse("2026-11-24T12:17:03.123+01:00").unwrap();
        assert_eq!(local, t);
        assert_eq!(Timestamp::parse("2026-11-24").unwrap().to_rfc3339(), "2026-11-24T00:00:00.000Z");
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(parse_date("2026-02-30").is_none());
    }
}

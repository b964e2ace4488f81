//! The clock: the one place the write and read sides read the time (the domain takes it as an argument).

use std::time::{SystemTime, UNIX_EPOCH};

use domain::Timestamp;

/// Now, in microseconds since the epoch.
pub fn now() -> Timestamp {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    Timestamp::from_micros(micros)
}

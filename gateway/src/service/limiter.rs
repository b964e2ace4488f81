//! Failed sign-ins counted per account and per client address: after
//! [`MAX_FAILURES`] within [`LOCKOUT`], that account or address is locked out
//! for [`LOCKOUT`]. In memory, per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins (per account, and per client address) before a lockout.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in, and how long a lockout lasts.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Limiter {
    /// Whether a key is locked out now.
    pub fn locked(&self, key: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(key).is_some_and(|(count, since)| *count >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    /// Counts a failure; returns whether it started a lockout.
    pub fn fail(&self, key: &str) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        let entry = failures.entry(key.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        entry.0 == MAX_FAILURES
    }

    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

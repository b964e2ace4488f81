//! What the access log learns about a request while it is served: its id
//! (the client's `X-Request-Id` when it is a sane one, otherwise a new one,
//! echoed on the answer) and the actor the caller resolved to (filled in by
//! the [`crate::service::Caller`] extractor). Carried in the request's
//! extensions; the error code of an answer travels in the response's.

use std::sync::{Arc, OnceLock};

use axum::http::HeaderMap;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: &str = "x-request-id";

pub struct RequestInfo {
    pub id: String,
    actor: OnceLock<String>,
}

impl RequestInfo {
    /// The info of a request with these headers.
    pub fn of(headers: &HeaderMap) -> Arc<RequestInfo> {
        let given = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| acceptable(id));
        let id = given.map_or_else(|| format!("{:016x}{:016x}", fast_random(), fast_random()), str::to_string);
        Arc::new(RequestInfo { id, actor: OnceLock::new() })
    }

    /// Records who the caller is (the first resolution wins).
    pub fn set_actor(&self, actor: &str) {
        let _ = self.actor.set(actor.to_string());
    }

    /// The caller's actor, or `-` when the request never resolved one.
    pub fn actor(&self) -> &str {
        self.actor.get().map_or("-", String::as_str)
    }
}

/// A per-thread SplitMix64 stream, seeded once from the OS: request ids and
/// trace sampling need no system call per request (neither is a secret).
pub(crate) fn fast_random() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A client's id is kept when it is 1 to 128 visible ASCII characters (it
/// goes into log lines and back into a header as it is).
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_and_others_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "trace-42".parse().unwrap());
        assert_eq!(RequestInfo::of(&headers).id, "trace-42");
        headers.insert(REQUEST_ID, "has space".parse().unwrap());
        assert_eq!(RequestInfo::of(&headers).id.len(), 32);
        headers.insert(REQUEST_ID, "x".repeat(129).parse().unwrap());
        assert_eq!(RequestInfo::of(&headers).id.len(), 32);
        let fresh = RequestInfo::of(&HeaderMap::new());
        assert_eq!(fresh.actor(), "-");
        fresh.set_actor("usr_1");
        fresh.set_actor("usr_2");
        assert_eq!(fresh.actor(), "usr_1");
    }
}

//! Waiting between attempts: a pause that a stop cuts short, and a step
//! retried (its failure reported) until it succeeds or the process is asked
//! to stop.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::status::ProcessStatus;
use crate::CommandError;

/// Waits `ms` or until asked to stop (true).
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, ms: u64) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Runs `step` until it succeeds, a second apart, reporting each failure as
/// `doing`; `None` when asked to stop first.
pub(crate) async fn retrying<T, F, Fut>(stop: &mut watch::Receiver<bool>, status: &ProcessStatus, doing: &str, mut step: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CommandError>>,
{
    loop {
        match step().await {
            Ok(value) => return Some(value),
            Err(error) => {
                status.failed(format!("{doing}: {error}"));
                if pause(stop, 1000).await {
                    return None;
                }
            }
        }
    }
}

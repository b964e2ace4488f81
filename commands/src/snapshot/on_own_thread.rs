//! [`on_own_thread`]: heavy work (a snapshot's: reading and decoding a file,
//! matching records, encoding a body; a read model's bulk index build) on a
//! thread that ends with it.
//!
//! Such work allocates and frees hundreds of megabytes in passing. The
//! allocator keeps what a thread freed for that thread's next allocations
//! and hands it back to the system when the thread is busy again or ends; a
//! pooled blocking thread (`spawn_blocking`) may sit idle for ten seconds
//! after, keeping it all, so a start would look that much larger for a
//! while. A thread of its own ends with the work, and its freed memory goes
//! back at once.

/// Runs `work` on a new thread named `name` and waits for it without
/// blocking the runtime.
pub async fn on_own_thread<R: Send + 'static>(name: &str, work: impl FnOnce() -> R + Send + 'static) -> R {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = sender.send(work());
        })
        .expect("the system gives a thread");
    receiver.await.expect("work on a thread of its own does not panic")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_work_runs_on_a_thread_of_its_own() {
        let caller = std::thread::current().id();
        let (ran_on, name) = super::on_own_thread("snapshot-test", || (std::thread::current().id(), std::thread::current().name().map(String::from))).await;
        assert_ne!(ran_on, caller);
        assert_eq!(name.as_deref(), Some("snapshot-test"));
    }
}

//! The late-commit trap on PostgreSQL: several writers (separate pools, as
//! separate processes would be) hold their transactions open for different
//! times before committing; a follower reading `position > checkpoint` must
//! see every position, in order, never skipping one that commits late.

use std::sync::Arc;
use std::time::Duration;

use commands::store::{AppendRequest, EventStore, ExpectedVersion, StreamAppend};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_skips_a_late_commit() {
    const WRITERS: usize = 4;
    const TASKS_PER_WRITER: usize = 4;
    const APPENDS_PER_TASK: usize = 25;
    let total = (WRITERS * TASKS_PER_WRITER * APPENDS_PER_TASK) as u64;
    let base = common::pg_settings();
    let follower_store = common::postgres(&base).await;

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let mut settings = base.clone();
        settings.commit_delay = Some(Duration::from_millis([0, 3, 7, 12][writer]));
        let store: Arc<dyn EventStore> = common::postgres(&settings).await;
        for task in 0..TASKS_PER_WRITER {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..APPENDS_PER_TASK {
                    let request = AppendRequest {
                        streams: vec![StreamAppend {
                            stream: format!("w{writer}/{task}"),
                            expected: ExpectedVersion::Exact(n as u64),
                            events: vec![common::event("x")],
                        }],
                        idempotency_key: None,
                        unique: Default::default(),
                    };
                    store.append(request).await.unwrap();
                }
            }));
        }
    }

    let follower = tokio::spawn(async move {
        let mut checkpoint = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while checkpoint < total {
            assert!(tokio::time::Instant::now() < deadline, "follower stuck at {checkpoint}");
            let batch = follower_store.read_all(checkpoint, 7).await.unwrap();
            for event in batch {
                assert_eq!(event.position, checkpoint + 1, "the follower skipped a position");
                checkpoint = event.position;
            }
            tokio::task::yield_now().await;
        }
        checkpoint
    });
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(follower.await.unwrap(), total);
}

/// A store in another process (here: another pool) hears of commits through
/// LISTEN/NOTIFY, so its followers wake without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_elsewhere_wake_followers() {
    let settings = common::pg_settings();
    let writer = common::postgres(&settings).await;
    let follower = common::postgres(&settings).await;
    let mut head = follower.head();
    assert_eq!(*head.borrow(), 0);
    for n in 0..3u64 {
        let request = AppendRequest {
            streams: vec![StreamAppend { stream: "elsewhere/1".into(), expected: ExpectedVersion::Exact(n), events: vec![common::event("x")] }],
            idempotency_key: None,
            unique: Default::default(),
        };
        let committed = writer.append(request).await.unwrap();
        let position = committed.last_position();
        let woke = tokio::time::timeout(Duration::from_secs(10), head.wait_for(|h| *h >= position)).await;
        assert!(matches!(woke, Ok(Ok(_))), "the follower's head did not reach {position}");
        assert_eq!(follower.read_all(position - 1, 10).await.unwrap().len(), 1, "notified events are visible");
    }
}

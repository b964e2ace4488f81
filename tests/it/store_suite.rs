//! One suite for every `EventStore`: both implementations must pass it.

use std::collections::HashMap;
use std::sync::Arc;

use commands::store::{open_postgres, AppendRequest, EventStore, ExpectedVersion, PostgresSettings, StreamAppend};
use commands::StoreError;

use crate::common::{self, event, tag};

fn one(stream: &str, expected: ExpectedVersion, tags: &[&str]) -> AppendRequest {
    AppendRequest {
        streams: vec![StreamAppend { stream: stream.into(), expected, events: tags.iter().map(|t| event(t)).collect() }],
        idempotency_key: None,
        unique: Default::default(),
    }
}

async fn append_and_read(store: &dyn EventStore) {
    let first = store.append(one("a/1", ExpectedVersion::Exact(0), &["a1", "a2"])).await.unwrap();
    assert_eq!(first.events.iter().map(|e| (e.position, e.stream_version)).collect::<Vec<_>>(), vec![(1, 1), (2, 2)]);
    let second = store.append(one("b/1", ExpectedVersion::Any, &["b1"])).await.unwrap();
    assert_eq!(second.last_position(), 3);
    store.append(one("a/1", ExpectedVersion::Exact(2), &["a3"])).await.unwrap();
    assert_eq!(*store.head().borrow(), 4);

    let stream: Vec<String> = store.read_stream("a/1", 1).await.unwrap().iter().map(tag).collect();
    assert_eq!(stream, ["a1", "a2", "a3"]);
    let tail: Vec<u64> = store.read_stream("a/1", 2).await.unwrap().iter().map(|e| e.stream_version).collect();
    assert_eq!(tail, [2, 3]);
    assert!(store.read_stream("nobody/1", 1).await.unwrap().is_empty());
    let range: Vec<u64> = store.read_stream_range("a/1", 2, 1).await.unwrap().iter().map(|e| e.stream_version).collect();
    assert_eq!(range, [2], "a bounded stream read");
    assert_eq!(store.read_stream_range("a/1", 1, 10).await.unwrap().len(), 3);

    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[3].stream, "a/1");
    assert_eq!(all[0].actor, "tester");
    assert_eq!(all[0].correlation_id, [7; 16]);
    assert_eq!(store.read_all(1, 2).await.unwrap().iter().map(|e| e.position).collect::<Vec<_>>(), [2, 3]);
    assert!(store.read_all(4, 10).await.unwrap().is_empty());
    reads_into_used_buffers(store).await;
    reads_by_position(store).await;
}

/// `read_positions` gives the events at the positions asked for, each once,
/// in position order, whatever order and repeats the ask has.
async fn reads_by_position(store: &dyn EventStore) {
    let all = store.read_all(0, 1000).await.unwrap();
    let head = all.len() as u64;
    for ask in [vec![], vec![1], vec![head], vec![3, 1, 2, 3], vec![head, 2, 0, head + 5], vec![1, 2, 4], (1..=head).rev().collect()] {
        let mut expected: Vec<u64> = ask.iter().copied().filter(|p| (1..=head).contains(p)).collect();
        expected.sort_unstable();
        expected.dedup();
        let read = store.read_positions(&ask).await.unwrap();
        assert_eq!(read.iter().map(|e| e.position).collect::<Vec<_>>(), expected, "asked for {ask:?}");
        for event in &read {
            assert_eq!(Some(event), all.get(event.position as usize - 1), "the whole event at {}", event.position);
        }
    }
}

/// `read_all_into` gives what `read_all` gives, whatever the buffer held
/// (its envelopes are overwritten and reused, never kept).
async fn reads_into_used_buffers(store: &dyn EventStore) {
    let all = store.read_all(0, 1000).await.unwrap();
    assert!(!all.is_empty());
    let stale: Vec<_> = all.iter().rev().cloned().chain(all.iter().cloned()).collect();
    for (after, max) in [(0, 1000), (1, 2), (all.len() as u64 - 1, 10), (all.len() as u64, 10)] {
        let expected = store.read_all(after, max).await.unwrap();
        for used in [Vec::new(), stale.clone(), stale[..1].to_vec()] {
            assert_eq!(store.read_all_into(after, max, used).await.unwrap(), expected, "after {after}, max {max}");
        }
    }
}

async fn conflicts_and_atomicity(store: &dyn EventStore) {
    store.append(one("c/1", ExpectedVersion::Exact(0), &["c1"])).await.unwrap();
    match store.append(one("c/1", ExpectedVersion::Exact(0), &["again"])).await {
        Err(StoreError::Conflict { stream, expected, actual }) => assert_eq!((stream.as_str(), expected, actual), ("c/1", 0, 1)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let head = *store.head().borrow();
    let both = AppendRequest {
        streams: vec![
            StreamAppend { stream: "d/1".into(), expected: ExpectedVersion::Exact(0), events: vec![event("d1")] },
            StreamAppend { stream: "c/1".into(), expected: ExpectedVersion::Exact(5), events: vec![event("c-bad")] },
        ],
        idempotency_key: None,
        unique: Default::default(),
    };
    assert!(matches!(store.append(both).await, Err(StoreError::Conflict { .. })));
    assert!(store.read_stream("d/1", 1).await.unwrap().is_empty(), "all or nothing");
    assert_eq!(*store.head().borrow(), head);
    let empty = AppendRequest { streams: vec![], idempotency_key: None, unique: Default::default() };
    assert!(matches!(store.append(empty).await, Err(StoreError::InvalidAppend(_))));
}

async fn idempotency_keys(store: &dyn EventStore) {
    let mut request = one("k/1", ExpectedVersion::Any, &["k1", "k2"]);
    request.idempotency_key = Some("key-1".into());
    let committed = store.append(request.clone()).await.unwrap();
    assert!(matches!(store.append(request).await, Err(StoreError::KeyUsed { key }) if key == "key-1"));
    let stored = store.read_idempotent("key-1").await.unwrap().expect("key is known");
    assert_eq!(stored.iter().map(|e| e.position).collect::<Vec<_>>(), committed.events.iter().map(|e| e.position).collect::<Vec<_>>());
    assert!(stored.iter().all(|e| e.idempotency_key.as_deref() == Some("key-1")));
    assert!(store.read_idempotent("key-2").await.unwrap().is_none());
}

/// 32 tasks race to append at each version of one stream: exactly one wins
/// each version, and every winner's event is in the stream.
async fn racing_writers(store: Arc<dyn EventStore>) {
    const VERSIONS: u64 = 20;
    let mut tasks = Vec::new();
    for task in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for version in 0..VERSIONS {
                let label = format!("t{task}-v{version}");
                match store.append(one("race/1", ExpectedVersion::Exact(version), &[&label])).await {
                    Ok(committed) => won.push((version, label, committed.last_position())),
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
                // Wait until this version is taken before trying the next one.
                while (store.read_stream("race/1", version + 1).await.unwrap().len() as u64) < 1 {
                    tokio::task::yield_now().await;
                }
            }
            won
        }));
    }
    let mut winners: HashMap<u64, (String, u64)> = HashMap::new();
    for task in tasks {
        for (version, label, position) in task.await.unwrap() {
            assert!(winners.insert(version, (label, position)).is_none(), "two winners for version {version}");
        }
    }
    assert_eq!(winners.len() as u64, VERSIONS, "one winner per version");
    let stream = store.read_stream("race/1", 1).await.unwrap();
    assert_eq!(stream.len() as u64, VERSIONS);
    for envelope in stream {
        let (label, position) = &winners[&(envelope.stream_version - 1)];
        assert_eq!(&tag(&envelope), label);
        assert_eq!(envelope.position, *position);
    }
}

/// Many concurrent appends (group commit) lose nothing and keep positions dense.
async fn concurrent_appends_are_dense(store: Arc<dyn EventStore>) {
    let start = *store.head().borrow();
    let mut tasks = Vec::new();
    for task in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                store.append(one(&format!("dense/{task}"), ExpectedVersion::Exact(n), &["x"])).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut after = start;
    let mut seen = 0;
    loop {
        let batch = store.read_all(after, 97).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            assert_eq!(e.position, after + 1, "positions are dense");
            after = e.position;
            seen += 1;
        }
    }
    assert_eq!(seen, 640);
}

async fn suite(store: Arc<dyn EventStore>) {
    append_and_read(store.as_ref()).await;
    conflicts_and_atomicity(store.as_ref()).await;
    idempotency_keys(store.as_ref()).await;
    racing_writers(store.clone()).await;
    concurrent_appends_are_dense(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(common::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_passes_the_suite() {
    let settings = common::pg_settings();
    suite(common::postgres(&settings).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_keep_events_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::pg_settings();
    for reopen_twice in 0..2 {
        let store = if reopen_twice == 0 { common::embedded(dir.path()) } else { common::postgres(&settings).await };
        store.append(one("r/1", ExpectedVersion::Exact(0), &["r1", "r2"])).await.unwrap();
        drop(store);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let again = if reopen_twice == 0 { common::embedded(dir.path()) } else { common::postgres(&settings).await };
        assert_eq!(*again.head().borrow(), 2);
        // Read from the file (nothing in memory after a reopen).
        reads_into_used_buffers(again.as_ref()).await;
        assert_eq!(again.read_stream("r/1", 1).await.unwrap().iter().map(tag).collect::<Vec<_>>(), ["r1", "r2"]);
        assert!(matches!(again.append(one("r/1", ExpectedVersion::Exact(0), &["r3"])).await, Err(StoreError::Conflict { .. })));
        again.append(one("r/1", ExpectedVersion::Exact(2), &["r3"])).await.unwrap();
    }
}

/// A PostgreSQL store that cannot be opened says why and what to do, and
/// never echoes the URL's password: a missing database, nothing listening,
/// a URL that does not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_errors_name_the_cause() {
    let reason = |url: String| async move {
        match open_postgres(&PostgresSettings::new(url)).await {
            Ok(_) => panic!("the store opened"),
            Err(e) => e.to_string(),
        }
    };
    let base = common::database_url();
    let (server, _) = base.rsplit_once('/').unwrap();
    let missing = reason(format!("{server}/objectstack_no_such_database")).await;
    assert!(missing.contains("database \"objectstack_no_such_database\" does not exist") && missing.contains("createdb"), "{missing}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = reason(format!("postgres://someone:s3cret-pass@127.0.0.1:{port}/app")).await;
    assert!(refused.contains(&format!("127.0.0.1:{port}")) && refused.contains("connection refused") && refused.contains("running"), "{refused}");
    assert!(!refused.contains("s3cret-pass"), "{refused}");

    let bad = reason("postgres://someone:s3cret-pass@127.0.0.1:notaport/app".into()).await;
    assert!(bad.contains("database URL is not valid") && bad.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"), "{bad}");
    assert!(!bad.contains("s3cret-pass"), "{bad}");
}

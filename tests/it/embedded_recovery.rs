//! Crash recovery of the embedded log: a write cut anywhere in its last frames
//! loses only what was never acknowledged; damage in the middle is refused.

use std::fs::OpenOptions;
use std::path::Path;

use commands::store::{open_embedded, AppendRequest, EventStore, ExpectedVersion, StreamAppend};

use crate::common::{event, tag};

fn append_one(n: u64) -> AppendRequest {
    AppendRequest {
        streams: vec![StreamAppend { stream: "log/1".into(), expected: ExpectedVersion::Exact(n), events: vec![event(&format!("e{n}"))] }],
        idempotency_key: None,
        unique: Default::default(),
    }
}

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("events.log")).unwrap().len()
}

/// Writes `n` events one append at a time; returns the file length after each.
async fn write_events(dir: &Path, n: u64) -> Vec<u64> {
    let store = open_embedded(dir).unwrap();
    let mut boundaries = vec![0];
    for i in 0..n {
        store.append(append_one(i)).await.unwrap();
        boundaries.push(log_len(dir));
    }
    boundaries
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_every_complete_event_survives() {
    let source = tempfile::tempdir().unwrap();
    let boundaries = write_events(source.path(), 6).await;
    let total = *boundaries.last().unwrap();
    // Cut the file at every byte offset inside the last two frames.
    for cut in boundaries[4]..total {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(source.path().join("events.log"), dir.path().join("events.log")).unwrap();
        OpenOptions::new().write(true).open(dir.path().join("events.log")).unwrap().set_len(cut).unwrap();
        let complete = boundaries.iter().filter(|b| **b <= cut).count() as u64 - 1;

        let store = open_embedded(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let events = store.read_all(0, 100).await.unwrap();
        assert_eq!(events.len() as u64, complete, "cut at {cut}");
        assert_eq!(events.iter().map(tag).collect::<Vec<_>>(), (0..complete).map(|i| format!("e{i}")).collect::<Vec<_>>());
        assert_eq!(log_len(dir.path()), boundaries[complete as usize], "the torn bytes are gone");
        // The log keeps working after recovery.
        let next = store.append(append_one(complete)).await.unwrap();
        assert_eq!(next.last_position(), complete + 1);
    }
}

#[tokio::test]
async fn garbage_after_the_last_frame_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 3).await;
    let mut file = OpenOptions::new().append(true).open(dir.path().join("events.log")).unwrap();
    std::io::Write::write_all(&mut file, &[0xff; 5]).unwrap();
    let store = open_embedded(dir.path()).unwrap();
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn damage_in_the_middle_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let boundaries = write_events(dir.path(), 5).await;
    let path = dir.path().join("events.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let inside_second_frame = (boundaries[1] + 12) as usize;
    bytes[inside_second_frame] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    match open_embedded(dir.path()) {
        Err(commands::StoreError::Corrupt(message)) => {
            assert!(message.contains("followed by valid data"), "{message}")
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("a damaged log must not open silently"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), *boundaries.last().unwrap(), "nothing was truncated");
}

#[tokio::test]
async fn one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open_embedded(dir.path()).unwrap();
    assert!(matches!(open_embedded(dir.path()), Err(commands::StoreError::Unavailable(_))));
}

/// An event too large for a frame is refused, never acknowledged and then lost on reopen.
#[tokio::test]
async fn oversized_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_embedded(dir.path()).unwrap();
    let mut huge = event("x");
    huge.payload = vec![0u8; 65 << 20];
    let request = AppendRequest {
        streams: vec![StreamAppend { stream: "big/1".into(), expected: ExpectedVersion::Any, events: vec![huge] }],
        idempotency_key: None,
        unique: Default::default(),
    };
    assert!(matches!(store.append(request).await, Err(commands::StoreError::InvalidAppend(_))));
    assert_eq!(*store.head().borrow(), 0);
}

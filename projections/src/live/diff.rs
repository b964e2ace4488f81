//! The difference between two results of a live query, as [`LiveOp`]s.

use std::collections::HashMap;
use std::sync::Arc;

use domain::value::Record;

use super::spec::LiveOp;

fn id_of(record: &Record) -> String {
    record.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

/// Ops that turn `old` into `new`: removes, then inserts/updates/moves in
/// ascending index order (applying them in order yields `new`).
pub fn diff(old: &[Arc<Record>], new: &[Arc<Record>]) -> Vec<LiveOp> {
    let old_index: HashMap<String, usize> = old.iter().enumerate().map(|(i, r)| (id_of(r), i)).collect();
    let new_ids: Vec<String> = new.iter().map(|r| id_of(r)).collect();
    let kept: std::collections::HashSet<&str> = new_ids.iter().map(String::as_str).collect();
    let mut ops: Vec<LiveOp> = old.iter().map(|r| id_of(r)).filter(|id| !kept.contains(id.as_str())).map(|id| LiveOp::Remove { id }).collect();
    // The old order after removals, to tell which records moved.
    let mut survivors: Vec<&str> = old.iter().map(|r| r.get("id").and_then(|v| v.as_str()).unwrap_or_default()).filter(|id| kept.contains(id)).collect();
    for (index, (id, record)) in new_ids.iter().zip(new).enumerate() {
        match old_index.get(id) {
            None => {
                ops.push(LiveOp::Insert { id: id.clone(), index, record: record.clone() });
                survivors.insert(index.min(survivors.len()), id);
            }
            Some(&before) => {
                let changed = !Arc::ptr_eq(&old[before], record) && old[before] != *record;
                let here = survivors.get(index).copied() == Some(id.as_str());
                if changed {
                    ops.push(LiveOp::Update { id: id.clone(), index, record: record.clone() });
                } else if !here {
                    ops.push(LiveOp::Move { id: id.clone(), index });
                }
                if !here {
                    if let Some(at) = survivors.iter().position(|s| *s == id) {
                        survivors.remove(at);
                    }
                    survivors.insert(index.min(survivors.len()), id);
                }
            }
        }
    }
    ops
}

/// Applies ops to a list (what a client does); used to check [`diff`].
pub fn apply(list: &mut Vec<Arc<Record>>, ops: &[LiveOp]) {
    for op in ops {
        match op {
            LiveOp::Remove { id } => list.retain(|r| id_of(r) != *id),
            LiveOp::Insert { index, record, .. } => list.insert((*index).min(list.len()), record.clone()),
            LiveOp::Update { id, index, record } => {
                if let Some(at) = list.iter().position(|r| id_of(r) == *id) {
                    list.remove(at);
                }
                list.insert((*index).min(list.len()), record.clone());
            }
            LiveOp::Move { id, index } => {
                if let Some(at) = list.iter().position(|r| id_of(r) == *id) {
                    let record = list.remove(at);
                    list.insert((*index).min(list.len()), record);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::value::Value;

    fn rec(id: &str, v: i64) -> Arc<Record> {
        Arc::new([("id".to_string(), Value::Text(id.into())), ("v".to_string(), Value::Int(v))].into_iter().collect())
    }

    #[test]
    fn applying_the_diff_gives_the_new_result() {
        // Deterministic pseudo-random lists over a small id space.
        let mut seed = 7u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2_000 {
            let make = |next: &mut dyn FnMut() -> u64| {
                let mut ids: Vec<u64> = (0..(next() % 8)).map(|_| next() % 10).collect();
                ids.dedup();
                let mut seen = std::collections::HashSet::new();
                ids.retain(|i| seen.insert(*i));
                ids.into_iter().map(|i| rec(&format!("r{i}"), (next() % 3) as i64)).collect::<Vec<_>>()
            };
            let old = make(&mut next);
            let new = make(&mut next);
            let ops = diff(&old, &new);
            let mut list = old.clone();
            apply(&mut list, &ops);
            assert_eq!(list, new, "old {old:?}\nnew {new:?}\nops {ops:?}");
        }
    }

    #[test]
    fn unchanged_results_give_no_ops() {
        let list = vec![rec("a", 1), rec("b", 2)];
        assert!(diff(&list, &list.clone()).is_empty());
        let updated = vec![rec("a", 1), rec("b", 3)];
        assert_eq!(diff(&list, &updated), vec![LiveOp::Update { id: "b".into(), index: 1, record: rec("b", 3) }]);
    }
}

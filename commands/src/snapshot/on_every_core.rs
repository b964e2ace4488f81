//! [`map_in_order`]: a snapshot's load splits its work into chunks (rows to
//! decode, records to match) and runs them on every core at once, keeping
//! the chunks' order in the result.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many threads [`map_in_order`] works on: the machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `work` applied to every item, on as many threads as the machine has cores
/// (this one among them), each taking the next item not yet taken (so items
/// of unequal cost keep every core busy to the end), the results in the
/// items' order.
pub fn map_in_order<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = cores().min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(at) else { return done };
            done.push((at, work(item)));
        }
    };
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..workers).map(|_| scope.spawn(worker)).collect();
        let mine = worker();
        let theirs = others.into_iter().flat_map(|handle| handle.join().expect("a snapshot's worker thread does not panic"));
        for (at, result) in mine.into_iter().chain(theirs) {
            results[at] = Some(result);
        }
    });
    results.into_iter().map(|result| result.expect("every item worked on")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_the_items_order() {
        let items: Vec<u64> = (0..1000).collect();
        assert_eq!(super::map_in_order(&items, |n| n * 2), items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(super::map_in_order(&[] as &[u64], |n| *n), Vec::<u64>::new());
        // Items of very unequal cost: still every result, in order.
        let costs: Vec<u64> = (0..40).map(|n| if n % 7 == 0 { 200_000 } else { 10 }).collect();
        let sums = super::map_in_order(&costs, |cost| (0..*cost).fold(0u64, |sum, n| sum.wrapping_add(n * n)));
        let expected: Vec<u64> = costs.iter().map(|cost| (0..*cost).fold(0u64, |sum, n| sum.wrapping_add(n * n))).collect();
        assert_eq!(sums, expected);
    }
}

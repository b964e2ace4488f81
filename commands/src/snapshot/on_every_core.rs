//! [`map_in_order`]: a snapshot's load splits its work into chunks (rows to
//! decode, records to match) and runs them on every core at once, keeping
//! the chunks' order in the result.

/// `work` applied to every item, on as many threads as the machine has cores
/// (each taking every n-th item), the results in the items' order.
pub fn map_in_order<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..workers)
            .map(|worker| scope.spawn(move || items.iter().enumerate().skip(worker).step_by(workers).map(|(at, item)| (at, work(item))).collect::<Vec<_>>()))
            .collect();
        for handle in handles {
            for (at, result) in handle.join().expect("a snapshot's worker thread does not panic") {
                results[at] = Some(result);
            }
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
    }
}

//! Near misses: the known name a mistyped key was meant to be, for the
//! errors of app files, definitions and the config file (`requird` ->
//! `required`, `lable` -> `label`).

/// The known name nearest to `key` (case aside), when it is a near miss:
/// at most two edits away.
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (distance(&key.to_lowercase(), &k.to_lowercase()), *k)).min().filter(|(d, _)| *d <= 2).map(|(_, k)| k)
}

/// Edit distance between two short names, a swap of neighbours counting
/// one (optimal string alignment), so `lable` is nearest to `label`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_names_the_key_meant_and_a_far_one_nothing() {
        assert_eq!(nearest("requird", &["required", "readonly"]), Some("required"));
        assert_eq!(nearest("lable", &["label", "table"]), Some("label"));
        assert_eq!(nearest("Label", &["label"]), Some("label"));
        assert_eq!(nearest("zzzzzz", &["label", "required"]), None);
    }
}

//! Highlights: the words of a text that match a query term (exactly, or
//! within the typo distance when the search is fuzzy), wrapped in `<em>`.

use super::query::{terms_of, typo_distance};

/// Whether two words are within `max` edits (insertions, deletions,
/// substitutions, and swaps of neighbours counting one, as the index's typo
/// matching counts them).
fn within(a: &str, b: &str, max: usize) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut rows: Vec<Vec<usize>> = vec![(0..=b.len()).collect()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j - 1] + cost).min(rows[i - 1][j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()] <= max
}

/// `text` with every word that matches one of `query`'s terms wrapped in
/// `<em>...</em>`, or `None` when nothing matches.
pub fn highlight(text: &str, query: &str, fuzzy: bool) -> Option<String> {
    let terms = terms_of(query);
    let mut out = String::with_capacity(text.len() + 16);
    let mut matched = false;
    let mut word_start: Option<usize> = None;
    let flush = |out: &mut String, word: &str, matched: &mut bool| {
        let lower = word.to_lowercase();
        let hit = terms.iter().any(|t| *t == lower || (fuzzy && within(&lower, t, typo_distance(t))));
        if hit {
            *matched = true;
            out.push_str("<em>");
            out.push_str(word);
            out.push_str("</em>");
        } else {
            out.push_str(word);
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
        } else {
            if let Some(start) = word_start.take() {
                flush(&mut out, &text[start..i], &mut matched);
            }
            out.push(c);
        }
    }
    if let Some(start) = word_start {
        flush(&mut out, &text[start..], &mut matched);
    }
    matched.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_typo_matches_are_marked() {
        assert_eq!(highlight("Quarterly report, draft", "report", false).as_deref(), Some("Quarterly <em>report</em>, draft"));
        assert_eq!(highlight("Quarterly report", "reprot", false), None);
        assert_eq!(highlight("Quarterly report", "reprot", true).as_deref(), Some("Quarterly <em>report</em>"));
        assert!(within("kitten", "sitting", 3) && !within("kitten", "sitting", 2));
    }
}

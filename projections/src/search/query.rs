//! Turning a search request into a tantivy query: per term, per searched
//! field, an exact term (BM25, boosted) and, when fuzzy, a typo-tolerant
//! match (scored lower, so exact matches rank first).

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

/// How much an exact term counts over a typo match of the same term.
const EXACT_WEIGHT: f32 = 4.0;

/// The words of a text as the index sees them: split on anything that is not
/// a letter or a digit, lower-cased (the "default" tokenizer does the same).
pub fn terms_of(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    terms.dedup();
    terms
}

/// Typos tolerated in a term: none below 4 characters, 1 up to 7, then 2.
pub fn typo_distance(term: &str) -> usize {
    match term.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// A searched field: its slot and its boost.
pub struct Searched {
    pub slot: Field,
    pub boost: f32,
}

/// The query for one object: its documents (`object` term) matching the terms
/// in the searched fields (all terms with `match_all`, any otherwise).
pub fn object_query(object_field: Field, object: &str, fields: &[Searched], terms: &[String], fuzzy: bool, match_all: bool) -> Box<dyn Query> {
    let per_term: Vec<(Occur, Box<dyn Query>)> = terms
        .iter()
        .map(|term| {
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for field in fields {
                let exact = TermQuery::new(Term::from_field_text(field.slot, term), IndexRecordOption::WithFreqs);
                alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), EXACT_WEIGHT * field.boost))));
                let distance = typo_distance(term);
                if fuzzy && distance > 0 {
                    let typo = FuzzyTermQuery::new(Term::from_field_text(field.slot, term), distance as u8, true);
                    alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(typo), field.boost))));
                }
            }
            let occur = if match_all { Occur::Must } else { Occur::Should };
            (occur, Box::new(BooleanQuery::new(alternatives)) as Box<dyn Query>)
        })
        .collect();
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(TermQuery::new(Term::from_field_text(object_field, object), IndexRecordOption::Basic)) as Box<dyn Query>),
        (Occur::Must, Box::new(BooleanQuery::new(per_term))),
    ]))
}

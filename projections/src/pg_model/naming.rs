//! Table and index names of the PostgreSQL read model, derived from object
//! names so that no object can reach another object's table or an internal one.
//!
//! PostgreSQL cuts identifiers at 63 bytes, and the model's own tables
//! (`rm_checkpoints`, `rm_objects`, `rm_dead_letters`, and the audit model's `rm_audit`) share the schema with
//! the objects' tables. So an object's table is `obj_{name}` when that fits,
//! and `objh_{first 40 bytes}_{hash of the whole name}` when it does not: no
//! internal table starts with `obj`, a short name never yields `objh_`, and
//! two long names with a common prefix differ in their hash. Index names are
//! `idx_` with a hash of the table and the indexed fields.

use domain::hash::fnv64;

/// Longest object name kept verbatim in its table name (`obj_` + 59 = 63 bytes).
const VERBATIM: usize = 59;

/// The table of an object's rows.
pub fn table(object: &str) -> String {
    if object.len() <= VERBATIM {
        return format!("obj_{object}");
    }
    // Object names are ASCII (`^[a-z_][a-z0-9_]*$`), so any byte is a boundary.
    let prefix = object.get(..40).unwrap_or(object);
    format!("objh_{prefix}_{:016x}", fnv64(object.as_bytes()))
}

/// The name of an index on `fields` of an object's table (the second
/// version: text under the `C` collation).
pub fn index(object: &str, fields: &[String]) -> String {
    named_index(object, fields, b"v2\0")
}

/// The name the first version gave the same index, to drop it.
pub fn index_v1(object: &str, fields: &[String]) -> String {
    named_index(object, fields, b"")
}

fn named_index(object: &str, fields: &[String], version: &[u8]) -> String {
    let table = table(object);
    let mut key = version.to_vec();
    key.extend_from_slice(table.as_bytes());
    for field in fields {
        key.push(0);
        key.extend_from_slice(field.as_bytes());
    }
    let readable = table.get(4..34).unwrap_or(&table[4..]);
    format!("idx_{readable}_{:016x}", fnv64(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_and_never_meet() {
        let long_a = format!("{}_alpha", "x".repeat(70));
        let long_b = format!("{}_beta", "x".repeat(70));
        for name in ["checkpoints", "objects", "dead_letters", "_objects", long_a.as_str(), long_b.as_str()] {
            assert!(table(name).len() <= 63, "{name}");
            assert!(table(name).starts_with("obj"), "{name}");
            assert!(index(name, &["a".into(), "b".into()]).len() <= 63);
        }
        assert_ne!(table(&long_a), table(&long_b));
        assert_eq!(table("task"), "obj_task");
        let verbatim = "y".repeat(VERBATIM);
        assert_eq!(table(&verbatim).len(), 63);
        // Two indexes whose fields join to the same text differ.
        assert_ne!(index("t", &["a_b".into(), "c".into()]), index("t", &["a".into(), "b_c".into()]));
        assert_ne!(index("t", &["a".into()]), index("u", &["a".into()]));
        assert_ne!(index("t", &["a".into()]), index_v1("t", &["a".into()]));
    }
}

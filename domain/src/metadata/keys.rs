//! The properties an object or field definition may have: those of the
//! protocol's JSON Schemas (`Object.json`, `Field.json` of
//! `@objectstack/spec` 3.0.6). A property outside them is refused with the
//! nearest known one, so a typo such as `requird` is an error at load, not
//! a rule silently ignored. Only new definitions are checked
//! (`decide_metadata`): definitions already in the log are read as accepted.

/// `data/Object.json` properties.
pub const OBJECT_KEYS: &[&str] = &[
    "abstract",
    "active",
    "cdc",
    "compactLayout",
    "datasource",
    "description",
    "displayNameField",
    "enable",
    "fields",
    "icon",
    "indexes",
    "isSystem",
    "keyPrefix",
    "label",
    "name",
    "partitioning",
    "pluralLabel",
    "recordName",
    "recordTypes",
    "search",
    "sharingModel",
    "softDelete",
    "stateMachines",
    "tableName",
    "tags",
    "tenancy",
    "titleFormat",
    "validations",
    "versioning",
];

/// `data/Field.json` properties.
pub const FIELD_KEYS: &[&str] = &[
    "addressFormat",
    "allowAlpha",
    "allowGeocoding",
    "allowHalf",
    "allowScanning",
    "auditTrail",
    "autonumberFormat",
    "barcodeFormat",
    "cached",
    "caseSensitive",
    "colorFormat",
    "conditionalRequired",
    "currencyConfig",
    "dataQuality",
    "defaultValue",
    "deleteBehavior",
    "dependencies",
    "description",
    "displayMap",
    "displayValue",
    "encryptionConfig",
    "expression",
    "externalId",
    "fileAttachmentConfig",
    "format",
    "group",
    "hidden",
    "index",
    "inlineHelpText",
    "label",
    "language",
    "lineNumbers",
    "marks",
    "maskingRule",
    "max",
    "maxLength",
    "maxRating",
    "min",
    "minLength",
    "multiple",
    "name",
    "options",
    "precision",
    "presetColors",
    "qrErrorCorrection",
    "readonly",
    "reference",
    "referenceFilters",
    "required",
    "scale",
    "searchable",
    "showValue",
    "sortable",
    "step",
    "summaryOperations",
    "theme",
    "trackFeedHistory",
    "type",
    "unique",
    "vectorConfig",
    "writeRequiresMasterRead",
];

/// Checks a new object definition's properties and its fields'.
pub fn check_definition(definition: &serde_json::Value) -> Result<(), crate::DomainError> {
    let Some(map) = definition.as_object() else { return Ok(()) };
    let name = map.get("name").and_then(serde_json::Value::as_str).unwrap_or("<unnamed>");
    let invalid = |e: String| crate::DomainError::InvalidDefinition(format!("object '{name}': {e}"));
    check_keys(map, OBJECT_KEYS).map_err(invalid)?;
    for (field, json) in map.get("fields").and_then(serde_json::Value::as_object).into_iter().flatten() {
        if let Some(properties) = json.as_object() {
            check_keys(properties, FIELD_KEYS).map_err(|e| invalid(format!("field '{field}': {e}")))?;
        }
    }
    Ok(())
}

/// Refuses a property of `map` that is not in `known`, naming the nearest known one.
pub fn check_keys(map: &serde_json::Map<String, serde_json::Value>, known: &[&str]) -> Result<(), String> {
    for key in map.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let nearest = known.iter().map(|k| (distance(&key.to_lowercase(), &k.to_lowercase()), *k)).min().filter(|(d, _)| *d <= 2);
        return Err(match nearest {
            Some((_, hint)) => format!("unknown property '{key}' (did you mean '{hint}'?)"),
            None => format!("unknown property '{key}'"),
        });
    }
    Ok(())
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
    fn a_typo_names_the_property_meant() {
        let field = serde_json::json!({"type": "text", "requird": true});
        assert_eq!(check_keys(field.as_object().unwrap(), FIELD_KEYS), Err("unknown property 'requird' (did you mean 'required'?)".into()));
        let object = serde_json::json!({"name": "x", "fields": {}, "zzzzzz": 1});
        assert_eq!(check_keys(object.as_object().unwrap(), OBJECT_KEYS), Err("unknown property 'zzzzzz'".into()));
        assert_eq!(check_keys(serde_json::json!({"type": "text", "maxLength": 3}).as_object().unwrap(), FIELD_KEYS), Ok(()));
    }
}

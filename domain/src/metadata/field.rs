//! One field definition (`Field.json`): the keys that carry rules are typed;
//! UI-only keys are kept in the object's raw JSON and ignored here.

use serde::Deserialize;

use super::field_type::FieldType;
use super::naming::check_option_value;
use crate::formula::{self, Expr};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SelectOption {
    pub label: Option<String>,
    pub value: String,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteBehavior {
    #[default]
    SetNull,
    Cascade,
    Restrict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrencyConfig {
    precision: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VectorConfig {
    dimensions: Option<usize>,
}

/// A field as declared, with its name filled in from the map key.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDef {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub multiple: bool,
    #[serde(default)]
    pub searchable: bool,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    pub default_value: Option<serde_json::Value>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    pub step: Option<f64>,
    #[serde(default)]
    pub options: Vec<SelectOption>,
    pub reference: Option<String>,
    /// As declared; see [`FieldDef::on_delete`] for the effective behaviour.
    pub delete_behavior: Option<DeleteBehavior>,
    pub expression: Option<String>,
    pub format: Option<String>,
    pub max_rating: Option<f64>,
    #[serde(default)]
    pub allow_half: bool,
    pub color_format: Option<String>,
    pub autonumber_format: Option<String>,
    pub conditional_required: Option<String>,
    #[serde(default)]
    pub external_id: bool,
    /// `index: true`: a single-field index in stored read models.
    #[serde(default)]
    index: bool,
    #[serde(default)]
    currency_config: Option<CurrencyConfig>,
    #[serde(default)]
    vector_config: Option<VectorConfig>,
    /// Parsed `expression` (formula fields) and `conditionalRequired`; filled by [`FieldDef::compile`].
    #[serde(skip)]
    pub compiled_expression: Option<Expr>,
    #[serde(skip)]
    pub compiled_conditional_required: Option<Expr>,
}

impl FieldDef {
    /// Parses one field definition; `name` comes from the map key.
    pub fn from_json(name: &str, json: &serde_json::Value) -> Result<FieldDef, String> {
        let mut field: FieldDef = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        field.name = name.to_string();
        field.compile()?;
        Ok(field)
    }

    /// Checks the definition's own consistency and parses its formulas.
    fn compile(&mut self) -> Result<(), String> {
        let t = self.field_type;
        if t.has_options() {
            if self.options.is_empty() {
                return Err(format!("type {} needs at least one option", t.as_str()));
            }
            let mut seen = std::collections::HashSet::new();
            for option in &self.options {
                check_option_value(&option.value)?;
                if !seen.insert(option.value.as_str()) {
                    return Err(format!("option value '{}' is listed twice", option.value));
                }
            }
            if self.options.iter().filter(|o| o.default).count() > 1 {
                return Err("more than one option is marked default".into());
            }
        }
        if t.is_reference() && self.reference.as_deref().is_none_or(str::is_empty) {
            return Err(format!("type {} needs 'reference' (the target object)", t.as_str()));
        }
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                return Err(format!("min {min} is greater than max {max}"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_length, self.max_length) {
            if min > max {
                return Err(format!("minLength {min} is greater than maxLength {max}"));
            }
        }
        if let (Some(precision), Some(scale)) = (self.precision, self.scale) {
            if scale > precision {
                return Err(format!("scale {scale} is greater than precision {precision}"));
            }
        }
        if t == FieldType::Formula {
            let source = self.expression.as_deref().ok_or("type formula needs 'expression'")?;
            self.compiled_expression = Some(formula::parse(source).map_err(|e| format!("expression: {e}"))?);
        }
        if t == FieldType::Vector {
            match self.vector_dimensions() {
                Some(1..=10_000) => {}
                _ => return Err("type vector needs vectorConfig.dimensions between 1 and 10000".into()),
            }
        }
        if let Some(source) = &self.conditional_required {
            self.compiled_conditional_required = Some(formula::parse(source).map_err(|e| format!("conditionalRequired: {e}"))?);
        }
        Ok(())
    }

    /// Decimal places allowed for a numeric value, when limited.
    pub fn decimal_places(&self) -> Option<u32> {
        match self.field_type {
            FieldType::Currency => Some(self.scale.or(self.currency_config.as_ref().and_then(|c| c.precision)).unwrap_or(2)),
            _ => self.scale,
        }
    }

    pub fn vector_dimensions(&self) -> Option<usize> {
        self.vector_config.as_ref().and_then(|c| c.dimensions)
    }

    /// The option marked `default`, if any.
    pub fn default_option(&self) -> Option<&str> {
        self.options.iter().find(|o| o.default).map(|o| o.value.as_str())
    }

    /// What happens to this record when the record it references is deleted:
    /// as declared, else cascade for master_detail (the child is owned) and set_null otherwise.
    pub fn on_delete(&self) -> DeleteBehavior {
        match (self.delete_behavior, self.field_type) {
            (Some(behavior), _) => behavior,
            (None, FieldType::MasterDetail) => DeleteBehavior::Cascade,
            (None, _) => DeleteBehavior::SetNull,
        }
    }

    /// Whether the definition asks for an index on this field.
    pub fn raw_index(&self) -> bool {
        self.index || self.external_id
    }

    /// True when the value is a list (multi-value types, or `multiple`).
    pub fn is_list(&self) -> bool {
        matches!(self.field_type, FieldType::Multiselect | FieldType::Checkboxes | FieldType::Tags | FieldType::Vector)
            || (self.multiple
                && matches!(self.field_type, FieldType::Select | FieldType::Lookup | FieldType::Image | FieldType::File | FieldType::Video | FieldType::Audio))
    }
}

//! Cubes: generated for every object, or declared by the app
//! (`{name, title?, sql: "<object>", measures: {name: {type, sql}}, dimensions: {name: {type, sql}}}`).

use domain::metadata::{Catalog, ObjectDef};
use domain::query::AggFunction;
use serde_json::{json, Value as Json};

use super::columns::{analysed_fields, Kind};

#[derive(Debug, Clone)]
pub struct Measure {
    pub name: String,
    pub title: String,
    pub agg: AggFunction,
    /// The field measured (`None` for a row count).
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimensionType {
    String,
    Number,
    Boolean,
    Time,
}

impl DimensionType {
    pub fn name(self) -> &'static str {
        match self {
            DimensionType::String => "string",
            DimensionType::Number => "number",
            DimensionType::Boolean => "boolean",
            DimensionType::Time => "time",
        }
    }

    fn of(kind: Kind) -> DimensionType {
        match kind {
            Kind::Number => DimensionType::Number,
            Kind::Text => DimensionType::String,
            Kind::Bool => DimensionType::Boolean,
            Kind::Time => DimensionType::Time,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dimension {
    pub name: String,
    pub title: String,
    pub kind: DimensionType,
    pub field: String,
}

#[derive(Debug, Clone)]
pub struct Cube {
    pub name: String,
    pub title: String,
    pub object: String,
    pub measures: Vec<Measure>,
    pub dimensions: Vec<Dimension>,
}

/// A cube's description (`GET /analytics/meta`).
pub type CubeMeta = Json;

fn title_of(object: &ObjectDef, field: &str) -> String {
    object.field(field).and_then(|f| f.label.clone()).unwrap_or_else(|| field.to_string())
}

impl Cube {
    /// The cube of an object: `count`; `<f>_sum|_avg|_min|_max` per number field; a dimension per analysed field.
    pub fn generated(object: &ObjectDef) -> Cube {
        let fields = analysed_fields(object);
        let mut measures = vec![Measure { name: "count".into(), title: format!("{} count", object.label), agg: AggFunction::Count, field: None }];
        for (field, kind) in &fields {
            if *kind == Kind::Number {
                for agg in [AggFunction::Sum, AggFunction::Avg, AggFunction::Min, AggFunction::Max] {
                    let title = format!("{} ({})", title_of(object, field), agg.name());
                    measures.push(Measure { name: format!("{field}_{}", agg.name()), title, agg, field: Some(field.clone()) });
                }
            }
        }
        let dimensions = fields
            .iter()
            .map(|(field, kind)| Dimension { name: field.clone(), title: title_of(object, field), kind: DimensionType::of(*kind), field: field.clone() })
            .collect();
        Cube { name: object.name.clone(), title: object.label.clone(), object: object.name.clone(), measures, dimensions }
    }

    /// A cube the app declares over one object.
    pub fn declared(json: &Json, catalog: &Catalog) -> Result<Cube, String> {
        let name = json.get("name").and_then(Json::as_str).ok_or("a cube needs a name")?.to_string();
        let table = json.get("sql").and_then(Json::as_str).ok_or_else(|| format!("cube '{name}' needs sql (the object it reads)"))?;
        let object = catalog.get(table).ok_or_else(|| format!("cube '{name}' reads '{table}', which is not an object"))?;
        let fields = analysed_fields(object);
        let kind_of = |field: &str| fields.iter().find(|(f, _)| f == field).map(|(_, k)| *k);
        let mut measures = Vec::new();
        if let Some(Json::Object(map)) = json.get("measures") {
            for (measure, def) in map {
                let agg_name = def.get("type").and_then(Json::as_str).unwrap_or("count");
                let agg = AggFunction::parse(agg_name)
                    .filter(|a| !matches!(a, AggFunction::ArrayAgg | AggFunction::StringAgg))
                    .ok_or_else(|| format!("cube '{name}': measure '{measure}' has an unsupported type '{agg_name}'"))?;
                let field = def.get("sql").and_then(Json::as_str).filter(|s| !s.is_empty() && *s != "*").map(str::to_string);
                if let Some(f) = &field {
                    let kind = kind_of(f).ok_or_else(|| format!("cube '{name}': measure '{measure}' reads unknown field '{f}'"))?;
                    if !matches!(agg, AggFunction::Count | AggFunction::CountDistinct) && kind != Kind::Number {
                        return Err(format!("cube '{name}': measure '{measure}' needs a number field, '{f}' is not"));
                    }
                } else if agg != AggFunction::Count {
                    return Err(format!("cube '{name}': measure '{measure}' needs sql (a field)"));
                }
                let title = def.get("label").or_else(|| def.get("title")).and_then(Json::as_str).unwrap_or(measure).to_string();
                measures.push(Measure { name: measure.clone(), title, agg, field });
            }
        }
        let mut dimensions = Vec::new();
        if let Some(Json::Object(map)) = json.get("dimensions") {
            for (dimension, def) in map {
                let field = def.get("sql").and_then(Json::as_str).unwrap_or(dimension).to_string();
                let kind = kind_of(&field).ok_or_else(|| format!("cube '{name}': dimension '{dimension}' reads unknown field '{field}'"))?;
                let title = def.get("label").or_else(|| def.get("title")).and_then(Json::as_str).unwrap_or(dimension).to_string();
                dimensions.push(Dimension { name: dimension.clone(), title, kind: DimensionType::of(kind), field });
            }
        }
        let title = json.get("title").and_then(Json::as_str).unwrap_or(&name).to_string();
        Ok(Cube { name, title, object: object.name.clone(), measures, dimensions })
    }

    /// A measure by name: `count`, `amount_sum`, `cube.amount_sum`, or `amount.sum`.
    pub fn measure(&self, member: &str) -> Option<&Measure> {
        let name = member.strip_prefix(&format!("{}.", self.name)).unwrap_or(member);
        self.measures.iter().find(|m| m.name == name).or_else(|| {
            let (field, agg) = name.rsplit_once('.')?;
            self.measures.iter().find(|m| m.field.as_deref() == Some(field) && m.agg.name() == agg)
        })
    }

    pub fn dimension(&self, member: &str) -> Option<&Dimension> {
        let name = member.strip_prefix(&format!("{}.", self.name)).unwrap_or(member);
        self.dimensions.iter().find(|d| d.name == name)
    }

    pub fn meta(&self) -> CubeMeta {
        json!({
            "name": self.name,
            "title": self.title,
            "measures": self.measures.iter().map(|m| json!({"name": format!("{}.{}", self.name, m.name), "shortName": m.name, "title": m.title, "type": "number", "aggType": m.agg.name()})).collect::<Vec<_>>(),
            "dimensions": self.dimensions.iter().map(|d| {
                let mut meta = json!({"name": format!("{}.{}", self.name, d.name), "shortName": d.name, "title": d.title, "type": d.kind.name()});
                if d.kind == DimensionType::Time {
                    meta["granularities"] = json!(super::time::Granularity::ALL);
                }
                meta
            }).collect::<Vec<_>>(),
        })
    }
}

/// The generated cubes (one per object the API shows) followed by the declared ones.
pub fn cubes(catalog: &Catalog, declared: &[Json]) -> Vec<Cube> {
    let mut cubes: Vec<Cube> = catalog.objects().filter(|o| o.api_enabled).map(|o| Cube::generated(o)).collect();
    cubes.sort_by(|a, b| a.name.cmp(&b.name));
    for json in declared {
        match Cube::declared(json, catalog) {
            Ok(cube) => {
                cubes.retain(|c| c.name != cube.name);
                cubes.push(cube);
            }
            Err(error) => tracing::warn!(%error, "a declared cube is skipped"),
        }
    }
    cubes
}

//! The analytics model as a snapshot: the catalog and each table's columns
//! as they are (row slots, free rows, column values, text dictionaries; a
//! text column's lookup is rebuilt from its dictionary).

use std::collections::{BTreeMap, HashMap};

use domain::event::ObjectDefined;

use super::columns::{AnalyticsModel, Column, Table};
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

impl Snapshot for AnalyticsModel {
    const NAME: &'static str = "analytics";
    const FORMAT: u32 = 1;
    /// The body: columns are plain vectors, copied once straight into it.
    type Captured = Vec<u8>;

    fn capture(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.put(&definitions(&self.catalog));
        let mut objects: Vec<&String> = self.tables.keys().collect();
        objects.sort();
        out.put(&(objects.len() as u64));
        for object in objects {
            let table = &self.tables[object];
            out.put(object);
            out.put(&table.slots.iter().map(|(id, row)| (id.as_str(), *row as u64)).collect::<Vec<_>>());
            out.put(&table.live);
            out.put(&table.free.iter().map(|row| *row as u64).collect::<Vec<_>>());
            out.put(&(table.columns.len() as u64));
            for (field, column) in &table.columns {
                out.put(field);
                match column {
                    Column::Number(values) => out.put(&(0u8, values)),
                    Column::Text { codes, dictionary, .. } => out.put(&(1u8, codes, dictionary)),
                    Column::Bool(values) => out.put(&(2u8, values)),
                    Column::Time(values) => out.put(&(3u8, values)),
                }
            }
        }
        out.bytes
    }

    fn encode(captured: Vec<u8>) -> Vec<u8> {
        captured
    }

    fn decode(_template: AnalyticsModel, position: u64, body: &[u8]) -> Result<AnalyticsModel, String> {
        let mut input = Reader::new(body, "the analytics model's snapshot");
        let catalog = from_definitions(input.take::<Vec<ObjectDefined>>()?)?;
        let mut tables = HashMap::new();
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let slots: Vec<(String, u64)> = input.take()?;
            let live: Vec<bool> = input.take()?;
            let free: Vec<u64> = input.take()?;
            let rows = live.len();
            let mut columns = BTreeMap::new();
            for _ in 0..input.count()? {
                let field: String = input.take()?;
                let column = match input.take::<u8>()? {
                    0 => Column::Number(input.take()?),
                    1 => {
                        let (codes, dictionary): (Vec<Option<u32>>, Vec<String>) = (input.take()?, input.take()?);
                        let lookup = dictionary.iter().enumerate().map(|(code, text)| (text.clone(), code as u32)).collect();
                        Column::Text { codes, dictionary, lookup }
                    }
                    2 => Column::Bool(input.take()?),
                    3 => Column::Time(input.take()?),
                    other => return Err(format!("the analytics model's snapshot: unknown column kind {other}")),
                };
                if column.len() != rows {
                    return Err(format!("the analytics model's snapshot: column {object}.{field} has {} rows, the table {rows}", column.len()));
                }
                columns.insert(field, column);
            }
            let in_range = |row: u64| usize::try_from(row).ok().filter(|row| *row < rows);
            let slots = slots
                .into_iter()
                .map(|(id, row)| in_range(row).map(|row| (id, row)))
                .collect::<Option<HashMap<String, usize>>>()
                .ok_or("the analytics model's snapshot: a row out of range")?;
            let free = free.into_iter().map(in_range).collect::<Option<Vec<usize>>>().ok_or("the analytics model's snapshot: a free row out of range")?;
            tables.insert(object, Table { slots, live, free, columns });
        }
        input.finish()?;
        Ok(AnalyticsModel::restored(catalog, tables, position))
    }
}

//! The analytics model as a snapshot: the catalog and each table's columns
//! as they are (live and free rows, column values and presence bits, text
//! dictionaries; a text column's lookup is rebuilt from its dictionary, and
//! the rows by id from the `id` column).

use std::collections::{BTreeMap, HashMap};

use domain::event::ObjectDefined;

use super::cells::Cells;
use super::columns::{AnalyticsModel, Column, Table};
use super::dictionary::Dictionary;
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

impl Snapshot for AnalyticsModel {
    const NAME: &'static str = "analytics";
    const FORMAT: u32 = 2;
    /// Nothing: columns are plain vectors, encoded under the lock straight
    /// into the file.
    type Captured = std::convert::Infallible;

    fn capture(&self, out: &mut Writer) -> Option<Self::Captured> {
        out.put(&definitions(&self.catalog));
        let mut objects: Vec<&String> = self.tables.keys().collect();
        objects.sort();
        out.put(&(objects.len() as u64));
        for object in objects {
            let table = &self.tables[object];
            out.put(object);
            out.put(&table.live);
            out.put(&table.free.iter().map(|row| *row as u64).collect::<Vec<_>>());
            out.put(&(table.columns.len() as u64));
            for (field, column) in &table.columns {
                out.put(field);
                match column {
                    Column::Number(cells) => out.put(&(0u8, cells.parts())),
                    Column::Text { codes, dictionary } => out.put(&(1u8, codes.parts(), dictionary.texts().collect::<Vec<_>>())),
                    Column::Bool(cells) => out.put(&(2u8, cells.parts())),
                    Column::Time(cells) => out.put(&(3u8, cells.parts())),
                }
            }
        }
        None
    }

    fn encode(captured: Self::Captured, _out: &mut Writer) {
        match captured {}
    }

    fn decode(_template: AnalyticsModel, position: u64, body: &[u8]) -> Result<AnalyticsModel, String> {
        let mut input = Reader::new(body, "the analytics model's snapshot");
        let catalog = from_definitions(input.take::<Vec<ObjectDefined>>()?)?;
        let mut tables = HashMap::new();
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let live: Vec<bool> = input.take()?;
            let free: Vec<u64> = input.take()?;
            let rows = live.len();
            let mut columns = BTreeMap::new();
            for _ in 0..input.count()? {
                let field: String = input.take()?;
                let broken = |e: String| format!("the analytics model's snapshot: column {object}.{field}: {e}");
                let column = match input.take::<u8>()? {
                    0 => Column::Number(cells(&mut input).map_err(broken)?),
                    1 => {
                        let codes: Cells<u32> = cells(&mut input).map_err(broken)?;
                        let dictionary = Dictionary::from_texts(input.take()?).map_err(broken)?;
                        if let Some(code) = (0..codes.len()).filter_map(|row| codes.get(row)).find(|code| *code as usize >= dictionary.len()) {
                            return Err(broken(format!("code {code} is not in its dictionary")));
                        }
                        Column::Text { codes, dictionary }
                    }
                    2 => Column::Bool(cells(&mut input).map_err(broken)?),
                    3 => Column::Time(cells(&mut input).map_err(broken)?),
                    other => return Err(format!("the analytics model's snapshot: unknown column kind {other}")),
                };
                if column.len() != rows {
                    return Err(format!("the analytics model's snapshot: column {object}.{field} has {} rows, the table {rows}", column.len()));
                }
                columns.insert(field, column);
            }
            let in_range = |row: u64| usize::try_from(row).ok().filter(|row| *row < rows);
            let free = free.into_iter().map(in_range).collect::<Option<Vec<usize>>>().ok_or("the analytics model's snapshot: a free row out of range")?;
            let table = Table::restored(live, free, columns).map_err(|e| format!("the analytics model's snapshot: table {object}: {e}"))?;
            tables.insert(object, table);
        }
        input.finish()?;
        Ok(AnalyticsModel::restored(catalog, tables, position))
    }
}

/// A column's cells: its values, then its presence bits.
fn cells<T: Copy + Default + bincode::Decode<()>>(input: &mut Reader) -> Result<Cells<T>, String> {
    let (values, present): (Vec<T>, Vec<u64>) = input.take()?;
    Cells::from_parts(values, present)
}

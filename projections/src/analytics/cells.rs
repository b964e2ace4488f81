//! A column's cells: the values in one vector and which rows hold one in a
//! bit set beside it. An `Option<f64>` or `Option<i64>` per row took 16
//! bytes where the value takes 8, and an `Option<u32>` 8 where the code
//! takes 4; a null is now one bit.

/// Values by row, with a bit per row saying whether the row holds one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cells<T> {
    values: Vec<T>,
    present: Vec<u64>,
}

impl<T: Copy + Default> Cells<T> {
    /// `rows` empty cells.
    pub fn nulls(rows: usize) -> Cells<T> {
        Cells { values: vec![T::default(); rows], present: vec![0; rows.div_ceil(64)] }
    }

    /// Cells as a snapshot held them; why not, when the bit set does not fit the values.
    pub fn from_parts(values: Vec<T>, present: Vec<u64>) -> Result<Cells<T>, String> {
        if present.len() != values.len().div_ceil(64) {
            return Err(format!("{} presence words for {} cells", present.len(), values.len()));
        }
        let mut cells = Cells { values, present };
        // Bits past the last row would make a row that grows into them look set.
        let tail = cells.values.len() % 64;
        if let (Some(last), true) = (cells.present.last_mut(), tail != 0) {
            *last &= (1u64 << tail) - 1;
        }
        Ok(cells)
    }

    /// The values (a null row's is the type's default) and the presence bits.
    pub fn parts(&self) -> (&Vec<T>, &Vec<u64>) {
        (&self.values, &self.present)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The row's value, if it holds one.
    #[inline]
    pub fn get(&self, row: usize) -> Option<T> {
        (self.present[row / 64] >> (row % 64) & 1 == 1).then(|| self.values[row])
    }

    pub fn set(&mut self, row: usize, value: Option<T>) {
        let (word, bit) = (row / 64, 1u64 << (row % 64));
        match value {
            Some(value) => {
                self.values[row] = value;
                self.present[word] |= bit;
            }
            None => {
                self.values[row] = T::default();
                self.present[word] &= !bit;
            }
        }
    }

    /// Adds an empty row at the end.
    pub fn push_null(&mut self) {
        self.values.push(T::default());
        if self.present.len() < self.values.len().div_ceil(64) {
            self.present.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_hold_values_and_nulls_by_row() {
        let mut cells: Cells<f64> = Cells::nulls(3);
        assert_eq!((0..3).map(|r| cells.get(r)).collect::<Vec<_>>(), vec![None, None, None]);
        for row in 3..200 {
            cells.push_null();
            cells.set(row, (row % 3 == 0).then_some(row as f64));
        }
        cells.set(1, Some(0.0));
        cells.set(3, None);
        assert_eq!(cells.len(), 200);
        assert_eq!(cells.get(1), Some(0.0), "a zero is a value, not a null");
        assert_eq!(cells.get(3), None);
        for row in 4..200 {
            assert_eq!(cells.get(row), (row % 3 == 0).then_some(row as f64), "row {row}");
        }
        let (values, present) = cells.parts();
        let back = Cells::from_parts(values.clone(), present.clone()).unwrap();
        assert_eq!(back, cells);
    }

    #[test]
    fn parts_that_do_not_fit_are_refused_and_stray_bits_cleared() {
        assert!(Cells::<u32>::from_parts(vec![0; 65], vec![0]).is_err());
        assert!(Cells::<u32>::from_parts(vec![0; 3], vec![0, 0]).is_err());
        let mut cells = Cells::<u32>::from_parts(vec![7; 3], vec![u64::MAX]).unwrap();
        assert_eq!(cells.get(2), Some(7));
        cells.push_null();
        assert_eq!(cells.get(3), None, "a row grown past the snapshot's rows starts empty");
    }
}

//! Users' data: a CSV or Parquet file (polars) read as named numeric columns, and written back
//! as CSV. Every column a model uses is checked: present, numeric, finite. This module reads
//! and writes tables; it never decides what a column means.

use crate::{Error, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Named numeric columns of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file it came from (named in errors).
    pub path: PathBuf,
    pub rows: usize,
    /// Every column's name, in the file's order.
    pub names: Vec<String>,
    df: DataFrame,
    /// Each row's 0-based row in the file (rows taken by [`Table::rows_at`] keep theirs).
    origin: Vec<usize>,
}

impl Table {
    /// Reads a `.csv` (with a header line) or `.parquet` file.
    pub fn read(path: &Path) -> Result<Table> {
        if !path.is_file() {
            return Err(Error::io(
                path,
                "cannot read",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let first_line = |e: PolarsError| {
            let text = e.to_string();
            Error::bad_file(
                path,
                text.lines()
                    .next()
                    .unwrap_or("unreadable")
                    .trim()
                    .to_string(),
            )
        };
        let df = match ext.as_str() {
            "csv" => {
                if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
                    return Err(Error::bad_file(path, "the file is empty"));
                }
                check_fields(path)?;
                CsvReadOptions::default()
                    .with_has_header(true)
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))
                    .and_then(|r| r.finish())
                    .map_err(first_line)?
            }
            "parquet" | "pq" => {
                let f = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
                ParquetReader::new(f).finish().map_err(first_line)?
            }
            other => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "`.{other}` is not a data format circuitscope reads (use .csv or .parquet)"
                    ),
                ))
            }
        };
        if df.height() == 0 {
            return Err(Error::bad_file(path, "the file has no rows"));
        }
        Ok(Table {
            path: path.to_path_buf(),
            rows: df.height(),
            names: df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            origin: (0..df.height()).collect(),
            df,
        })
    }

    /// A table from named columns (all of one length) held in memory.
    pub fn from_columns(path: &Path, columns: &[(String, Vec<f64>)]) -> Result<Table> {
        let df = DataFrame::new(
            columns
                .iter()
                .map(|(n, v)| Column::new(n.as_str().into(), v))
                .collect(),
        )
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        Ok(Table {
            path: path.to_path_buf(),
            rows: df.height(),
            names: columns.iter().map(|c| c.0.clone()).collect(),
            origin: (0..df.height()).collect(),
            df,
        })
    }

    /// A column as finite f64 values; the error names the file, the column and the row.
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self.df.column(name).map_err(|_| {
            Error::bad_file(
                &self.path,
                format!("no column `{name}` (columns: {})", self.names.join(", ")),
            )
        })?;
        let cast = c.cast(&DataType::Float64).map_err(|e| {
            Error::bad_file(&self.path, format!("column `{name}` is not numeric: {e}"))
        })?;
        let values = cast
            .f64()
            .map_err(|e| Error::bad_file(&self.path, format!("column `{name}`: {e}")))?;
        let mut out = Vec::with_capacity(values.len());
        for (row, v) in values.into_iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => out.push(v),
                Some(v) => {
                    return Err(Error::bad_file(
                        &self.path,
                        format!("column `{name}`, {}: {v} is not finite", self.row_name(row)),
                    ))
                }
                None => {
                    let raw = c.get(row).map(|a| a.to_string()).unwrap_or_default();
                    return Err(Error::bad_file(
                        &self.path,
                        format!(
                            "column `{name}`, {}: `{}` is not a number",
                            self.row_name(row),
                            raw.trim_matches('"')
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Row `row` (0-based) as a reader finds it: `row 5 (line 6)` in a CSV file with its header
    /// line, `row 5` elsewhere.
    pub fn row_name(&self, row: usize) -> String {
        let csv = self
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let row = self.origin[row];
        if csv {
            format!("row {} (line {})", row + 1, row + 2)
        } else {
            format!("row {}", row + 1)
        }
    }

    /// The rows at `idx` (in that order) as a new table.
    pub fn rows_at(&self, idx: &[usize]) -> Result<Table> {
        let ca = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
        let df = self
            .df
            .take(&ca)
            .map_err(|e| Error::Data(format!("{}: {e}", self.path.display())))?;
        Ok(Table {
            path: self.path.clone(),
            rows: df.height(),
            names: self.names.clone(),
            origin: idx.iter().map(|&i| self.origin[i]).collect(),
            df,
        })
    }
}

/// Every line of a CSV file has as many fields as its header (polars would fill a short row
/// with nulls and report a long one without its line).
fn check_fields(path: &Path) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::bad_file(path, format!("not a CSV file: {e}")))?;
    let expected = reader
        .headers()
        .map_err(|e| Error::bad_file(path, format!("not a CSV file: {e}")))?
        .len();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) if record.len() == expected => {}
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                return Err(Error::bad_file(
                    path,
                    format!(
                        "line {line}: {} fields, the header has {expected}",
                        record.len()
                    ),
                ));
            }
            Err(e) => return Err(Error::bad_file(path, format!("not a CSV file: {e}"))),
        }
    }
}

/// Named columns as CSV text with a header line (what a writer with only a standard library
/// can produce and read back); every value written so that it reads back exactly.
pub fn to_csv(columns: &[(String, Vec<f64>)]) -> String {
    let rows = columns.first().map_or(0, |c| c.1.len());
    let mut s = columns
        .iter()
        .map(|c| c.0.as_str())
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in 0..rows {
        let line: Vec<String> = columns.iter().map(|c| format!("{:?}", c.1[r])).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

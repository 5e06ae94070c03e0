//! `digits`: the UCI optical-recognition digits (1,797 8x8 images, 10 classes), vendored from
//! scikit-learn's wheel under `fixtures/digits/` (CC BY 4.0, see its README) and embedded in
//! the binary, plus a reader for CSV files of the same layout (64 pixels 0..16, then a label).
//! The train/test split is fixed and must never depend on a training seed.

use super::{split_rng, Dataset};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use std::io::Read;
use std::path::Path;

const EMBEDDED: &[u8] = include_bytes!("../../fixtures/digits/digits.csv.gz");

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Share of each class held out for the test split.
pub const TEST_FRACTION: f64 = 0.2;

/// Parses digits CSV text; `path` only names the source in errors.
pub fn parse_csv(text: &str, path: &Path) -> Result<Dataset> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (lineno, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != PIXELS + 1 {
            return Err(Error::bad_file(
                path,
                format!(
                    "line {}: {} columns, expected {} (64 pixels and a label)",
                    lineno + 1,
                    fields.len(),
                    PIXELS + 1
                ),
            ));
        }
        for (col, f) in fields.iter().enumerate() {
            let v: f32 = f.parse().map_err(|_| {
                Error::bad_file(
                    path,
                    format!(
                        "line {}, column {}: `{f}` is not a number",
                        lineno + 1,
                        col + 1
                    ),
                )
            })?;
            if !v.is_finite() {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "line {}, column {}: `{f}` is not finite",
                        lineno + 1,
                        col + 1
                    ),
                ));
            }
            if col < PIXELS {
                x.push(v / 16.0);
            } else if v.fract() != 0.0 || !(0.0..=9.0).contains(&v) {
                return Err(Error::bad_file(
                    path,
                    format!("line {}: label `{f}` is not a digit 0-9", lineno + 1),
                ));
            } else {
                labels.push(v as usize);
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::bad_file(path, "no rows"));
    }
    Dataset::classification("digits", PIXELS, 10, x, labels)
}

/// Reads a digits CSV file (plain or `.gz`).
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .map_err(|e| Error::bad_file(path, format!("not gzip-compressed text: {e}")))?;
        s
    } else {
        String::from_utf8(bytes).map_err(|_| Error::bad_file(path, "not UTF-8 text"))?
    };
    parse_csv(&text, path)
}

/// All 1,797 embedded images.
pub fn load_all() -> Dataset {
    let mut s = String::new();
    flate2::read::GzDecoder::new(EMBEDDED)
        .read_to_string(&mut s)
        .expect("embedded digits are valid gzip");
    parse_csv(&s, Path::new("fixtures/digits/digits.csv.gz")).expect("embedded digits parse")
}

/// The fixed stratified split: for each class, a seed-0 shuffle puts 20% in the test set.
/// The split never depends on the training seed.
pub fn train_test(all: &Dataset) -> (Dataset, Dataset) {
    let labels = all.labels.as_ref().expect("digits are labelled");
    let mut rng = split_rng(0, 200);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..10 {
        let mut idx: Vec<usize> = (0..all.n).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let k = (idx.len() as f64 * TEST_FRACTION).round() as usize;
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (
        all.subset(&train, "digits/train"),
        all.subset(&test, "digits/test"),
    )
}

//! The IDX file format of MNIST (big-endian magic, dimensions, then unsigned bytes), for users
//! who have the files. Only `u8` data is supported, as MNIST uses; anything else is an error
//! naming the file. The reader must never panic or allocate more than the file's size on a
//! hostile header.

use super::Dataset;
use crate::{Error, Result};
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes; `path` only names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::bad_file(
            path,
            format!(
                "not an IDX file: {} bytes, shorter than the 4-byte header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::bad_file(
            path,
            format!(
                "not an IDX file: magic starts {:02x}{:02x}, expected 0000",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::bad_file(
            path,
            format!(
                "IDX data type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(Error::bad_file(path, "IDX header declares 0 dimensions"));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::bad_file(
            path,
            format!(
                "truncated IDX header: {ndim} dimensions need {header} bytes, file has {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().unwrap()) as usize)
        .collect();
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let want =
        total.ok_or_else(|| Error::bad_file(path, format!("IDX dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have != want {
        return Err(Error::bad_file(
            path,
            format!("IDX dimensions {dims:?} need {want} data bytes, file has {have}"),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

pub fn read(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    parse(&bytes, path)
}

/// Encodes an array as IDX (used by tests and to write small files).
pub fn encode(arr: &IdxArray) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, arr.dims.len() as u8];
    for &d in &arr.dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend(&arr.data);
    out
}

/// Reads an MNIST-style pair: images `[n, rows, cols]` scaled to [0, 1] and labels `[n]`.
pub fn load_pair(images: &Path, labels: &Path, name: &str) -> Result<Dataset> {
    let img = read(images)?;
    let lab = read(labels)?;
    if img.dims.len() != 3 {
        return Err(Error::bad_file(
            images,
            format!(
                "expected 3 dimensions [n, rows, cols], found {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(Error::bad_file(
            labels,
            format!("expected 1 dimension [n], found {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(Error::bad_file(
            labels,
            format!(
                "{} labels for {} images in {}",
                lab.dims[0],
                img.dims[0],
                images.display()
            ),
        ));
    }
    if let Some(i) = lab.data.iter().position(|&l| l > 9) {
        return Err(Error::bad_file(
            labels,
            format!("label {} at index {i} is not a digit 0-9", lab.data[i]),
        ));
    }
    let d_in = img.dims[1] * img.dims[2];
    let x = img.data.iter().map(|&p| p as f32 / 255.0).collect();
    Dataset::classification(
        name,
        d_in,
        10,
        x,
        lab.data.iter().map(|&l| l as usize).collect(),
    )
}

/// Loads `train-*` and `t10k-*` MNIST files from a folder into train and test sets.
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train = load_pair(
        &dir.join("train-images-idx3-ubyte"),
        &dir.join("train-labels-idx1-ubyte"),
        "mnist/train",
    )?;
    let test = load_pair(
        &dir.join("t10k-images-idx3-ubyte"),
        &dir.join("t10k-labels-idx1-ubyte"),
        "mnist/test",
    )?;
    Ok((train, test))
}

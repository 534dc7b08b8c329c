//! R objects to core inputs, and core outputs to R matrices.

use extendr_api::prelude::*;
use keopsr_core::plan::Shape;
use keopsr_core::{Error, Input};

/// An argument's data: R's own double vector (not copied) or a conversion of
/// an integer vector.
pub struct Numeric {
    robj: Robj,
    converted: Option<Vec<f64>>,
    nrow: usize,
    ncol: usize,
    is_matrix: bool,
}

impl Numeric {
    pub fn view(&self) -> Input<'_> {
        let values = match &self.converted {
            Some(v) => v.as_slice(),
            None => self.robj.as_real_slice().unwrap_or(&[]),
        };
        Input { values, nrow: self.nrow, ncol: self.ncol, is_matrix: self.is_matrix }
    }
}

/// The type and shape of an argument, from its length and `dim` attribute
/// only: no value is read, so an ALTREP vector (`1:1e9`) is not expanded.
/// A double or integer vector or matrix; anything else is an input error
/// naming the argument.
pub fn shape(robj: &Robj, name: &str) -> keopsr_core::Result<Shape> {
    let len = robj.len();
    if !(robj.is_real() || robj.is_integer() && !robj.inherits("factor")) {
        let what = if robj.is_complex() {
            "complex numbers (keopsr computes with real numbers)".to_string()
        } else {
            format!("an object of type {:?}", robj.rtype())
        };
        return Err(Error::Input(format!("argument {name} must be a numeric matrix or vector, got {what}")));
    }
    let (nrow, ncol, is_matrix) = match robj.dim() {
        None => (len, 1, false),
        Some(d) if d.len() == 2 => (extent(d[0]), extent(d[1]), true),
        Some(d) => {
            return Err(Error::Input(format!(
                "argument {name} must be a matrix or a vector, got an array with {} dimensions",
                d.len()
            )))
        }
    };
    Ok(Shape { len, nrow, ncol, is_matrix })
}

/// The argument's values (integers converted, doubles not copied); call
/// [`shape`] and check it against the formula first.
pub fn numeric(robj: &Robj, name: &str) -> keopsr_core::Result<Numeric> {
    let Shape { nrow, ncol, is_matrix, .. } = shape(robj, name)?;
    let converted = if robj.is_real() {
        None
    } else {
        let ints = robj.as_integer_slice().unwrap_or(&[]);
        Some(ints.iter().map(|&k| if k == i32::MIN { f64::NAN } else { k as f64 }).collect())
    };
    Ok(Numeric { robj: robj.clone(), converted, nrow, ncol, is_matrix })
}

/// Sets the `dim` attribute of a column-major vector.
pub fn matrix(mut robj: Robj, rows: usize, cols: usize) -> Robj {
    // Setting dim on a vector of matching length cannot fail.
    let _ = robj.set_attrib("dim", [rows as i32, cols as i32]);
    robj
}

fn extent(r: Rint) -> usize {
    Option::<i32>::from(r).unwrap_or(0).max(0) as usize
}

//! Buffers whose size comes from user input (output rows, monoid states,
//! scratch, gradients, host copies for the GPU), shared by every backend.
//! They are reserved fallibly: a size that cannot be allocated is the
//! classed error "the result is too large to fit in memory" (kind "input"),
//! not an abort of the R session.

use crate::error::{Error, Result};

pub fn too_large() -> Error {
    Error::Input("the result is too large to fit in memory".to_string())
}

/// `len` copies of `fill`; `None` (an overflowed size computation) or a
/// failed reservation is [`too_large`].
pub fn try_filled<V: Clone>(len: Option<usize>, fill: V) -> Result<Vec<V>> {
    let len = len.ok_or_else(too_large)?;
    let mut v = try_with_capacity(Some(len))?;
    v.resize(len, fill);
    Ok(v)
}

/// An empty vector with room for `len` elements.
pub fn try_with_capacity<V>(len: Option<usize>) -> Result<Vec<V>> {
    let len = len.ok_or_else(too_large)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large())?;
    Ok(v)
}

/// `a * b`, `None` on overflow (for [`try_filled`]).
pub fn size(a: usize, b: usize) -> Option<usize> {
    a.checked_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors() {
        assert_eq!(try_filled(Some(usize::MAX / 8), 0.0f64).unwrap_err().kind(), "input");
        assert_eq!(try_filled(Some(1usize << 60), 0u8).unwrap_err().kind(), "input");
        assert_eq!(try_filled(size(1 << 40, 1 << 40), 0.0f64).unwrap_err().kind(), "input");
        assert_eq!(try_filled(Some(3), 1.5f64).unwrap(), vec![1.5; 3]);
        assert!(try_with_capacity::<f64>(Some(10)).unwrap().capacity() >= 10);
    }
}

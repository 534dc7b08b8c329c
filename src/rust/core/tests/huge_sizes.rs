//! Sizes that cannot be allocated are the classed error "the result is too
//! large to fit in memory" (kind "input"), never an abort.

use keopsr_core::{evaluate, Formula, Input, Options};

/// 1000 output rows of dimension 2e9: 16 TB of monoid states.
#[test]
fn an_impossible_output_is_an_input_error() {
    let formula = Formula::parse("Sum_Reduction(OneHot(x, 2000000000), 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let x = vec![0.0; 1000];
    let y = [1.0];
    let err = evaluate(&formula, &[Input::vector(&x), Input::vector(&y)], &Options::default(), &mut || false).unwrap_err();
    assert_eq!(err.kind(), "input", "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
}

/// A scalar result whose intermediate values (two one-hot vectors of
/// dimension 2e9 for each of 16 tile positions) need 512 GB of scratch.
#[test]
fn an_impossible_scratch_is_an_input_error() {
    let f = "Sum_Reduction(Sum(OneHot(x + y, 2000000000)) + Sum(OneHot(x - y, 2000000000)), 1)";
    let formula = Formula::parse(f, &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let (x, y) = ([0.0, 1.0], [1.0, 2.0]);
    let err = evaluate(&formula, &[Input::vector(&x), Input::vector(&y)], &Options::default(), &mut || false).unwrap_err();
    assert_eq!(err.kind(), "input", "{err}");
}

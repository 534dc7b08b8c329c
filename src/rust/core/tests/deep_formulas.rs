//! Formulas as long as users make them: a sum of thousands of LazyTensors
//! arrives as one left-deep chain `a + b + c + ...`. Parsing, lowering,
//! derivatives, compilation and evaluation must not recurse once per term
//! (each test runs on a 1 MB stack to prove it), and what is too large must
//! be a classed error, never a crash.

use keopsr_core::{evaluate, Formula, Input, Options};

fn on_small_stack<F: FnOnce() + Send + 'static>(f: F) {
    std::thread::Builder::new().stack_size(1 << 20).spawn(f).unwrap().join().unwrap();
}

fn chain(terms: usize, term: impl Fn(usize) -> String) -> String {
    let mut s = String::with_capacity(terms * 12);
    for k in 0..terms {
        if k > 0 {
            s.push_str(" + ");
        }
        s.push_str(&term(k));
    }
    s
}

/// Σ_j Σ_k (x_i + k y_j) for k < n, and its gradient in x, against the closed forms.
fn sum_of_terms(n: usize) {
    let f = chain(n, |k| format!("(x + {k} * y)"));
    let aliases = ["x = Vi(1)", "y = Vj(1)", "e = Vi(1)"];
    let x = [0.5, -1.0, 2.0];
    let y = [1.0, 0.25];
    let inputs = [Input::vector(&x), Input::vector(&y)];
    let formula = Formula::parse(&format!("Sum_Reduction({f}, 1)"), &aliases[..2]).unwrap();
    let out = evaluate(&formula, &inputs, &Options::default(), &mut || false).unwrap();
    let tri = (n * (n - 1) / 2) as f64;
    let ysum: f64 = y.iter().sum();
    for (r, &xi) in x.iter().enumerate() {
        let want = n as f64 * y.len() as f64 * xi + tri * ysum;
        let got = out.values.as_ref().unwrap().1[r];
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "row {r}: {got} vs {want}");
    }
    // d/dx of the sum is n per pair: Grad(F, x, e) = n e, summed over j.
    let g = Formula::parse(&format!("Sum_Reduction(Grad({f}, x, e), 1)"), &aliases).unwrap();
    let e = [1.0, 2.0, 3.0];
    let out =
        evaluate(&g, &[Input::vector(&x), Input::vector(&y), Input::vector(&e)], &Options::default(), &mut || false)
            .unwrap();
    for (r, &er) in e.iter().enumerate() {
        assert_eq!(out.values.as_ref().unwrap().1[r], n as f64 * er * y.len() as f64);
    }
}

#[test]
fn a_sum_of_ten_thousand_terms_evaluates_on_a_small_stack() {
    on_small_stack(|| sum_of_terms(10_000));
}

/// A million terms: the result, or a classed error, never a stack overflow.
#[test]
fn a_sum_of_a_million_terms_works_or_is_a_formula_error() {
    on_small_stack(|| {
        let f = format!("Sum_Reduction({}, 1)", chain(1_000_000, |_| "x".to_string()));
        match Formula::parse(&f, &["x = Vi(1)"]) {
            Ok(formula) => {
                let x = [1.0, 2.0];
                let out = evaluate(&formula, &[Input::vector(&x)], &Options::default(), &mut || false).unwrap();
                assert_eq!(out.values.unwrap().1, vec![1e6, 2e6]);
            }
            Err(e) => assert_eq!(e.kind(), "formula", "{e}"),
        }
    });
}

/// Deep nesting (parentheses, calls, minus signs) is a formula error past
/// the parser's limit, and works below it in half of the 8 MB stack R's
/// main thread usually has.
#[test]
fn deep_nesting_is_bounded() {
    let run = || {
        let depth = keopsr_core::formula::parse::MAX_DEPTH / 2 - 3;
        for (open, close) in [("(", ")"), ("Exp(", ")"), ("-(", ")"), ("Sum(", ")"), ("(x + ", ")")] {
            let f = format!("Sum_Reduction({}x{}, 1)", open.repeat(depth), close.repeat(depth));
            let formula = Formula::parse(&f, &["x = Vi(1)"]).unwrap_or_else(|e| panic!("{open}: {e}"));
            let x = [0.0];
            evaluate(&formula, &[Input::vector(&x)], &Options::default(), &mut || false).unwrap();
            let g = format!("Sum_Reduction(Grad({}x{}, x, x), 1)", open.repeat(depth), close.repeat(depth));
            Formula::parse(&g, &["x = Vi(1)"]).unwrap();
            let deep = format!("Sum_Reduction({}x{}, 1)", open.repeat(100_000), close.repeat(100_000));
            assert_eq!(Formula::parse(&deep, &["x = Vi(1)"]).unwrap_err().kind(), "formula");
        }
    };
    std::thread::Builder::new().stack_size(4 << 20).spawn(run).unwrap().join().unwrap();
}

/// Junk of 10 MB is an error at once (columns are not found by rescanning).
#[test]
fn ten_megabytes_of_junk_return_promptly() {
    let start = std::time::Instant::now();
    for junk in [
        " ".repeat(10_000_000),
        "x".repeat(10_000_000),
        "(".repeat(10_000_000),
        "1+".repeat(5_000_000),
        "$".repeat(10_000_000),
    ] {
        let e = Formula::parse(&junk, &["x = Vi(1)"]).unwrap_err();
        assert_eq!(e.kind(), "formula");
        assert!(e.to_string().len() < 1000);
    }
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

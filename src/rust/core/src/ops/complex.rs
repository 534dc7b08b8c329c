//! Complex numbers. A complex vector of dimension d is stored as a real
//! vector of dimension 2d, real and imaginary parts interleaved
//! (re_0, im_0, re_1, im_1, ...), as in KeOps. Every operation is defined
//! from its real and imaginary parts; a complex scalar (dimension 2) or a
//! real scalar broadcasts against a complex vector.

use crate::error::Result;
use crate::formula::{Graph, NodeId};
use crate::ops::{Args, Binary, Def, Param, Unary};

use Param::F;

/// Checks that argument k is complex (even dimension) and returns it.
fn complex_arg(g: &Graph, a: &Args<'_>, k: usize) -> Result<NodeId> {
    let z = a.node(k);
    if g.dim(z) % 2 != 0 {
        return Err(a.dim_error(format!(
            "argument {} must be complex (an even dimension: real and imaginary parts interleaved), got dimension {}",
            k + 1,
            g.dim(z)
        )));
    }
    Ok(z)
}

pub fn re(g: &mut Graph, z: NodeId) -> Result<NodeId> {
    let table = (0..g.dim(z) / 2).map(|k| Some(2 * k as u32)).collect();
    g.gather(z, table)
}

pub fn im(g: &mut Graph, z: NodeId) -> Result<NodeId> {
    let table = (0..g.dim(z) / 2).map(|k| Some(2 * k as u32 + 1)).collect();
    g.gather(z, table)
}

/// The complex vector with these real and imaginary parts (broadcast to a
/// common dimension).
pub fn complex(g: &mut Graph, re: NodeId, im: NodeId) -> Result<NodeId> {
    let d = g.dim(re).max(g.dim(im));
    let widen = |g: &mut Graph, x: NodeId| -> Result<NodeId> {
        if g.dim(x) == d {
            Ok(x)
        } else {
            g.gather(x, vec![Some(0); d])
        }
    };
    let (re, im) = (widen(g, re)?, widen(g, im)?);
    let both = g.concat(re, im);
    let table = (0..d).flat_map(|k| [Some(k as u32), Some((d + k) as u32)]).collect();
    g.gather(both, table)
}

/// Real and imaginary parts of complex argument k.
fn parts(g: &mut Graph, a: &Args<'_>, k: usize) -> Result<(NodeId, NodeId)> {
    let z = complex_arg(g, a, k)?;
    Ok((re(g, z)?, im(g, z)?))
}

fn bin(g: &mut Graph, op: Binary, x: NodeId, y: NodeId) -> Result<NodeId> {
    g.binary(op, x, y, None)
}

/// Checks that two complex arguments have equal dimensions or one is a scalar.
fn broadcastable(g: &Graph, a: &Args<'_>) -> Result<()> {
    let (dz, dw) = (g.dim(a.node(0)), g.dim(a.node(1)));
    if dz != dw && dz != 2 && dw != 2 {
        return Err(a.dim_error(format!(
            "complex operands need equal dimensions or one complex scalar, got complex dimensions {} and {}",
            dz / 2,
            dw / 2
        )));
    }
    Ok(())
}

fn add_or_subtract(g: &mut Graph, a: &Args<'_>, op: Binary) -> Result<NodeId> {
    let (zr, zi) = parts(g, a, 0)?;
    let (wr, wi) = parts(g, a, 1)?;
    broadcastable(g, a)?;
    let r = bin(g, op, zr, wr)?;
    let i = bin(g, op, zi, wi)?;
    complex(g, r, i)
}

pub static DEFS: &[Def] = &[
    Def {
        name: "ComplexReal",
        r_name: "Re",
        params: &[F],
        optional: 0,
        usage: "ComplexReal(z)",
        dim_rule: "dim(z) / 2",
        doc: "real part",
        build: |g, a| parts(g, a, 0).map(|p| p.0),
    },
    Def {
        name: "ComplexImag",
        r_name: "Im",
        params: &[F],
        optional: 0,
        usage: "ComplexImag(z)",
        dim_rule: "dim(z) / 2",
        doc: "imaginary part",
        build: |g, a| parts(g, a, 0).map(|p| p.1),
    },
    Def {
        name: "Real2Complex",
        r_name: "real2complex",
        params: &[F],
        optional: 0,
        usage: "Real2Complex(x)",
        dim_rule: "2 dim(x)",
        doc: "x + 0i",
        build: |g, a| {
            let zero = g.constant(0.0);
            complex(g, a.node(0), zero)
        },
    },
    Def {
        name: "Imag2Complex",
        r_name: "imag2complex",
        params: &[F],
        optional: 0,
        usage: "Imag2Complex(x)",
        dim_rule: "2 dim(x)",
        doc: "0 + xi",
        build: |g, a| {
            let zero = g.constant(0.0);
            complex(g, zero, a.node(0))
        },
    },
    Def {
        name: "Conj",
        r_name: "Conj",
        params: &[F],
        optional: 0,
        usage: "Conj(z)",
        dim_rule: "dim(z)",
        doc: "complex conjugate",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            let ni = g.unary(Unary::Minus, i)?;
            complex(g, r, ni)
        },
    },
    Def {
        name: "ComplexAbs",
        r_name: "Mod",
        params: &[F],
        optional: 0,
        usage: "ComplexAbs(z)",
        dim_rule: "dim(z) / 2",
        doc: "modulus |z|",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            let n = square_abs(g, r, i)?;
            g.unary(Unary::Sqrt, n)
        },
    },
    Def {
        name: "ComplexSquareAbs",
        r_name: "",
        params: &[F],
        optional: 0,
        usage: "ComplexSquareAbs(z)",
        dim_rule: "dim(z) / 2",
        doc: "squared modulus |z|^2",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            square_abs(g, r, i)
        },
    },
    Def {
        name: "ComplexAngle",
        r_name: "Arg",
        params: &[F],
        optional: 0,
        usage: "ComplexAngle(z)",
        dim_rule: "dim(z) / 2",
        doc: "argument (angle) of z, in (-pi, pi]",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            bin(g, Binary::Atan2, i, r)
        },
    },
    Def {
        name: "ComplexExp",
        r_name: "exp",
        params: &[F],
        optional: 0,
        usage: "ComplexExp(z)",
        dim_rule: "dim(z)",
        doc: "complex exponential",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            let m = g.unary(Unary::Exp, r)?;
            let (c, s) = (g.unary(Unary::Cos, i)?, g.unary(Unary::Sin, i)?);
            let (re, im) = (bin(g, Binary::Mult, m, c)?, bin(g, Binary::Mult, m, s)?);
            complex(g, re, im)
        },
    },
    Def {
        name: "ComplexExp1j",
        r_name: "exp1j",
        params: &[F],
        optional: 0,
        usage: "ComplexExp1j(x)",
        dim_rule: "2 dim(x)",
        doc: "exp(i x) = cos(x) + i sin(x) for real x",
        build: |g, a| {
            let x = a.node(0);
            let (c, s) = (g.unary(Unary::Cos, x)?, g.unary(Unary::Sin, x)?);
            complex(g, c, s)
        },
    },
    Def {
        name: "ComplexAdd",
        r_name: "+",
        params: &[F, F],
        optional: 0,
        usage: "ComplexAdd(z, w)",
        dim_rule: "dims equal, or one is 2 (complex scalar)",
        doc: "z + w",
        build: |g, a| add_or_subtract(g, a, Binary::Add),
    },
    Def {
        name: "ComplexSubtract",
        r_name: "-",
        params: &[F, F],
        optional: 0,
        usage: "ComplexSubtract(z, w)",
        dim_rule: "dims equal, or one is 2 (complex scalar)",
        doc: "z - w",
        build: |g, a| add_or_subtract(g, a, Binary::Subtract),
    },
    Def {
        name: "ComplexMult",
        r_name: "*",
        params: &[F, F],
        optional: 0,
        usage: "ComplexMult(z, w)",
        dim_rule: "dims equal, or one is 2 (complex scalar)",
        doc: "z w",
        build: |g, a| {
            let (zr, zi) = parts(g, a, 0)?;
            let (wr, wi) = parts(g, a, 1)?;
            broadcastable(g, a)?;
            let (rr, ii) = (bin(g, Binary::Mult, zr, wr)?, bin(g, Binary::Mult, zi, wi)?);
            let (ri, ir) = (bin(g, Binary::Mult, zr, wi)?, bin(g, Binary::Mult, zi, wr)?);
            let re = bin(g, Binary::Subtract, rr, ii)?;
            let im = bin(g, Binary::Add, ri, ir)?;
            complex(g, re, im)
        },
    },
    Def {
        name: "ComplexDivide",
        r_name: "/",
        params: &[F, F],
        optional: 0,
        usage: "ComplexDivide(z, w)",
        dim_rule: "dims equal, or one is 2 (complex scalar)",
        doc: "z / w",
        build: |g, a| {
            let (zr, zi) = parts(g, a, 0)?;
            let (wr, wi) = parts(g, a, 1)?;
            broadcastable(g, a)?;
            let n = square_abs(g, wr, wi)?;
            let (rr, ii) = (bin(g, Binary::Mult, zr, wr)?, bin(g, Binary::Mult, zi, wi)?);
            let (ir, ri) = (bin(g, Binary::Mult, zi, wr)?, bin(g, Binary::Mult, zr, wi)?);
            let re = bin(g, Binary::Add, rr, ii)?;
            let im = bin(g, Binary::Subtract, ir, ri)?;
            let (re, im) = (bin(g, Binary::Divide, re, n)?, bin(g, Binary::Divide, im, n)?);
            complex(g, re, im)
        },
    },
    Def {
        name: "ComplexRealScal",
        r_name: "*",
        params: &[F, F],
        optional: 0,
        usage: "ComplexRealScal(x, z)",
        dim_rule: "dim(z); dim(x) = dim(z) / 2 or 1",
        doc: "real x times complex z",
        build: |g, a| {
            let x = a.node(0);
            let (r, i) = parts(g, a, 1)?;
            let (dx, dz) = (g.dim(x), g.dim(r));
            if dx != 1 && dx != dz {
                return Err(a.dim_error(format!("the real factor has dimension {dx}, the complex one {dz}")));
            }
            let (re, im) = (bin(g, Binary::Mult, x, r)?, bin(g, Binary::Mult, x, i)?);
            complex(g, re, im)
        },
    },
    Def {
        name: "ComplexSum",
        r_name: "sum",
        params: &[F],
        optional: 0,
        usage: "ComplexSum(z)",
        dim_rule: "2",
        doc: "sum of the complex components",
        build: |g, a| {
            let (r, i) = parts(g, a, 0)?;
            let (sr, si) = (g.sum(r)?, g.sum(i)?);
            complex(g, sr, si)
        },
    },
];

fn square_abs(g: &mut Graph, r: NodeId, i: NodeId) -> Result<NodeId> {
    let (r2, i2) = (g.unary(Unary::Square, r)?, g.unary(Unary::Square, i)?);
    bin(g, Binary::Add, r2, i2)
}

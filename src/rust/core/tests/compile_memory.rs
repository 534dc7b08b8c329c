//! Compiling a formula takes memory linear in its size. Element-wise chains
//! of dimension >= 16 are fused into the sum that consumes them; each fused
//! node used to keep a copy of its whole chain (quadratic: a chain of 6000
//! terms at D = 16 took more than 3 GB). A counting allocator measures the
//! peak during compilation. This file holds a single test, so that no other
//! test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use keopsr_core::cpu::{GemmUse, Program};
use keopsr_core::Formula;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn fused_chain_compiles_in_linear_memory() {
    // Σ_c Σ_k Sin(x_c - k y_c): 3 fused nodes of dimension 16 per term.
    let terms = 1000;
    let body: Vec<String> = (0..terms).map(|k| format!("Sin(x - y * {k})")).collect();
    let text = format!("Sum_Reduction(Sum({}), 1)", body.join(" + "));
    let formula = Formula::parse(&text, &["x = Vi(16)", "y = Vj(16)"]).unwrap();
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let program = Program::compile(&formula.graph, &formula.roots, formula.axis, GemmUse::default());
    let peak = PEAK.load(Ordering::Relaxed) - before;
    // About 3000 fused instructions of a few hundred bytes: well under 16 MB
    // (the quadratic copies took about 300 MB here).
    assert!(peak < 16 << 20, "compiling took {} MB", peak >> 20);
    assert!(program.scratch_len > 0);
}

//! Progress of long computations, for whoever called the engine: the R glue
//! shows it as a progress bar. Engines call [`report`] between rounds of
//! work, on the thread that called them (the same thread that polls for
//! interrupts), so a sink installed there by [`with_sink`] sees them; with
//! no sink, a report costs one thread-local read.

use std::cell::RefCell;

/// Receives `(done, total, unit)`: `unit` is `"pairs"` for a reduction
/// (pairs (i, j) evaluated so far) or `"iterations"` for a solver.
pub type Sink = Box<dyn FnMut(u64, u64, &'static str)>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Runs `f` with `sink` receiving the reports of the computations it runs
/// on this thread; the previous sink (if any) is restored afterwards.
pub fn with_sink<R>(sink: Sink, f: impl FnOnce() -> R) -> R {
    let previous = SINK.with(|s| s.borrow_mut().replace(sink));
    let out = f();
    SINK.with(|s| *s.borrow_mut() = previous);
    out
}

/// Runs `f` without reporting its progress (a solver reports iterations,
/// not the pairs of each iteration's reduction).
pub fn silenced<R>(f: impl FnOnce() -> R) -> R {
    let previous = SINK.with(|s| s.borrow_mut().take());
    let out = f();
    SINK.with(|s| *s.borrow_mut() = previous);
    out
}

/// Reports progress to the sink of this thread, if any. A sink that is
/// running (a report from inside a report) is skipped rather than re-entered.
pub fn report(done: u64, total: u64, unit: &'static str) {
    SINK.with(|s| {
        if let Ok(mut slot) = s.try_borrow_mut() {
            if let Some(sink) = slot.as_mut() {
                sink(done, total, unit);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn reports_reach_the_sink_of_the_scope_only() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        report(1, 2, "pairs"); // no sink: ignored
        with_sink(Box::new(move |d, t, u| log.borrow_mut().push((d, t, u))), || {
            report(3, 4, "pairs");
            silenced(|| report(5, 6, "pairs"));
            report(7, 8, "iterations");
        });
        report(9, 10, "pairs");
        assert_eq!(*seen.borrow(), vec![(3, 4, "pairs"), (7, 8, "iterations")]);
    }
}

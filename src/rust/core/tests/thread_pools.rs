//! The CPU thread pool: one pool at a time (not one per thread count, kept
//! forever), and reductions still work in a child forked after the pool
//! started (R's parallel::mclapply), where the parent's threads are gone.
//! One test, so that no other test starts threads meanwhile.

use std::time::{Duration, Instant};

use keopsr_core::{evaluate, Formula, Input, Options};

/// Σ_j (x_i + y_j) with `threads` threads; true when it is right.
fn reduction_works(threads: usize) -> bool {
    let formula = Formula::parse("Sum_Reduction(x + y, 1)", &["x = Vi(1)", "y = Vj(1)"]).unwrap();
    let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
    let y = vec![1.0; 300];
    let options = Options { threads, ..Options::default() };
    let out = evaluate(&formula, &[Input::vector(&x), Input::vector(&y)], &options, &mut || false).unwrap();
    out.values.unwrap().1.iter().enumerate().all(|(i, &v)| v == 300.0 * (i as f64 + 1.0))
}

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn pools_are_bounded_and_survive_fork() {
    // Many thread counts: earlier pools are dropped, their threads exit.
    let before = os_threads();
    for threads in 1..=20 {
        assert!(reduction_works(threads));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while os_threads() > before + 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(os_threads() <= before + 20, "{} threads after 20 pools (started with {before})", os_threads());

    // Fork after the pool started; the child reduces with the same thread
    // count (the inherited pool has no threads) and a new one.
    assert!(reduction_works(3));
    // SAFETY: the child only runs the reduction and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = reduction_works(3) && reduction_works(2);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the reduction in the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
    // The parent's pool still works.
    assert!(reduction_works(3));
}

//! Polling R for a user interrupt from Rust.
//!
//! `R_CheckUserInterrupt` longjmps out when the user pressed Ctrl-C; a longjmp
//! through Rust frames is undefined behaviour, so it runs inside
//! `R_ToplevelExec`, which catches the jump and reports it as FALSE.
//! extendr's FFI exports neither function: they are declared here (libR
//! provides them). Must only be called on R's main thread.

use std::os::raw::{c_int, c_void};

extern "C" {
    fn R_CheckUserInterrupt();
    fn R_ToplevelExec(fun: Option<unsafe extern "C" fn(*mut c_void)>, data: *mut c_void) -> c_int;
}

unsafe extern "C" fn check(_: *mut c_void) {
    R_CheckUserInterrupt();
}

/// True when the user asked to interrupt.
pub fn pending() -> bool {
    // SAFETY: called from the R main thread only (the CPU engine polls its
    // interrupt callback on the calling thread); `check` takes no data.
    unsafe { R_ToplevelExec(Some(check), std::ptr::null_mut()) == 0 }
}

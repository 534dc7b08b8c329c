# Errors: the Rust core returns a condition object (class
# c("keopsr_<kind>_error", "keopsr_error", "error", "condition")) instead of a
# value; it is raised here with the user's call.

# Raises `res` if it is a condition, else returns it.
check_result <- function(res, call = sys.call(-1)) {
  if (inherits(res, "keopsr_error")) {
    res$call <- call
    # An interrupt is also R's own `interrupt` condition, so that
    # tryCatch(interrupt = ) sees Ctrl-C during a reduction as elsewhere.
    if (inherits(res, "keopsr_interrupt_error")) {
      class(res) <- c("keopsr_interrupt_error", "keopsr_error", "interrupt", "error", "condition")
    }
    stop(res)
  }
  res
}

# An R-side classed error, for arguments checked before reaching Rust;
# `...`: further fields of the condition (such as the failed chunk).
keopsr_abort <- function(kind, message, call = sys.call(-1), ...) {
  stop(structure(
    class = c(paste0("keopsr_", kind, "_error"), "keopsr_error", "error", "condition"),
    list(message = message, call = call, ...)
  ))
}

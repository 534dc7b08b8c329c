# Skips for optional tools. NVRTC is required where the test command says so
# (KEOPSR_REQUIRE_NVRTC=1, as CI does): there a missing NVRTC fails.
nvrtc_or_skip <- function() {
  if (!nzchar(keops_info()$nvrtc)) {
    if (identical(Sys.getenv("KEOPSR_REQUIRE_NVRTC"), "1")) stop("NVRTC is required (KEOPSR_REQUIRE_NVRTC=1) but was not found")
    skip("NVRTC not found")
  }
}

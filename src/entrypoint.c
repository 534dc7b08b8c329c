// Forwards routine registration to the Rust static library (and keeps the
// linker from dropping it).
void R_init_keopsr_extendr(void *dll);

void R_init_keopsr(void *dll) {
    R_init_keopsr_extendr(dll);
}

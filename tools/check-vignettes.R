# Runs every vignette's code (knitr to markdown: no pandoc needed); an error
# in a chunk fails.
out <- tempfile("vignettes")
dir.create(out)
for (v in list.files("vignettes", pattern = "[.]Rmd$", full.names = TRUE)) {
  knitr::opts_chunk$set(error = FALSE)
  knitr::knit(v, output = file.path(out, sub("Rmd$", "md", basename(v))), quiet = TRUE)
  cat("vignette ran:", v, "\n")
}

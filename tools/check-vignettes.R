# Runs every vignette's code (knitr to markdown: no pandoc needed); an error
# in a chunk fails.
out <- tempfile("vignettes")
dir.create(out)
for (v in list.files("vignettes", pattern = "[.]Rmd$", full.names = TRUE)) {
  # Figures go to the temporary folder, not into the source tree.
  knitr::opts_chunk$set(error = FALSE, fig.path = file.path(out, "figure", ""))
  # A fresh environment per vignette, so that vignettes cannot overwrite
  # this script's variables or each other's.
  knitr::knit(v, output = file.path(out, sub("Rmd$", "md", basename(v))), quiet = TRUE,
    envir = new.env(parent = globalenv()))
  cat("vignette ran:", v, "\n")
}

library(testthat)
library(keopsr)

test_check("keopsr")

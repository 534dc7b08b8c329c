test_that("an interrupt stops a long reduction with a classed error, session intact", {
  skip_if_not_installed("callr")
  expect_interrupt_stops(function() {
    x <- matrix(rnorm(3e5), ncol = 3)
    K <- exp(-sqdist(Vi(x), Vj(x))) # 1e10 pairs: about a minute
    function() sum(K, index = "j")
  })
})

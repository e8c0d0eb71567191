# Golden values for services/meta_analysis/bias.py and effects.py, computed with R metafor:
# Egger's regression test (regtest, model "rma", predictor "sei": the random-effects model
# refitted with the standard error as moderator, z test), the funnel plot's points and
# reference line (funnel.rma), and random-effects pooling of generic effect sizes (log odds
# ratios from an estimate and its 95% CI).
#
# Usage, from the repository root:
#   Rscript tests/reference/metafor_bias.R > tests/reference/metafor_bias.json
# Datasets: the seed's Table 1 on the logit scale (impossible rows left out, as the audit
# does), a small invented set of proportions, and an invented set of odds ratios with CIs.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, maxiter = 10000)
table1 <- read.csv("reviews/ldh_resorption/baseline/table1_prevalence.csv", stringsAsFactors = FALSE)
keep <- table1$n_resorbed <= table1$n_total

proportions <- list(
  table1 = list(xi = table1$n_resorbed[keep], ni = table1$n_total[keep]),
  small = list(xi = c(4, 12, 9, 30, 7, 15, 22, 5, 18, 40, 11),
               ni = c(20, 40, 25, 60, 35, 30, 41, 9, 50, 52, 13))
)
odds <- list(
  or = c(0.42, 0.61, 0.35, 0.90, 0.55),
  lo = c(0.20, 0.35, 0.12, 0.51, 0.30),
  hi = c(0.88, 1.06, 1.02, 1.59, 1.01)
)

# regtest() ignores a control list, so its refit stops at rma's default threshold (1e-5);
# the same model refitted here to 1e-12 is the exact reference, regtest's own figures are kept
# beside it (they agree to about 1e-5).
egger <- function(res, yi, vi) {
  eg <- regtest(res, model = "rma", predictor = "sei")
  fit <- rma(yi, vi, mods = ~ sqrt(vi), method = "REML", test = "z", control = ctrl)
  pred <- predict(fit, newmods = 0)
  list(zval = unname(fit$zval[2]), pval = unname(fit$pval[2]), est = unname(pred$pred),
       ci_lb = unname(pred$ci.lb), ci_ub = unname(pred$ci.ub),
       intercept = unname(fit$beta[1]), slope = unname(fit$beta[2]), se = unname(fit$se),
       tau2 = fit$tau2,
       regtest = list(zval = eg$zval, pval = eg$pval, est = eg$est, ci_lb = eg$ci.lb,
                      ci_ub = eg$ci.ub))
}

funnel_data <- function(res) {
  pdf(NULL)
  f <- funnel(res)
  dev.off()
  list(x = f$x, y = f$y, refline = unname(res$beta[1]))
}

out <- list(metafor = as.character(packageVersion("metafor")), R = R.version.string, sets = list())
for (name in names(proportions)) {
  d <- proportions[[name]]
  es <- escalc(measure = "PLO", xi = d$xi, ni = d$ni)
  res <- rma(yi, vi, data = es, method = "REML", test = "z", control = ctrl)
  out$sets[[name]] <- list(xi = d$xi, ni = d$ni, measure = "PLO", yi = as.numeric(es$yi),
                           vi = as.numeric(es$vi), mu = unname(res$beta[1]), tau2 = res$tau2,
                           egger = egger(res, es$yi, es$vi), funnel = funnel_data(res))
}
yi <- log(odds$or)
sei <- (log(odds$hi) - log(odds$lo)) / (2 * qnorm(0.975))
res <- rma(yi = yi, sei = sei, method = "REML", test = "z", control = ctrl)
out$log_or <- list(or = odds$or, ci_low = odds$lo, ci_high = odds$hi, mu = unname(res$beta[1]),
                   se = unname(res$se), ci_lb = res$ci.lb, ci_ub = res$ci.ub, tau2 = res$tau2,
                   i2 = res$I2, q = res$QE)
cat(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE))

# Golden values for services/meta_analysis, computed with R metafor (and lme4 for the GLMM).
#
# Usage, from the repository root:
#   Rscript tests/reference/metafor_reference.R [TABLE1_CSV] > tests/reference/metafor_reference.json
# TABLE1_CSV defaults to the review's baseline copy of the seed's Table 1
# (reviews/ldh_resorption/baseline/table1_prevalence.csv). Rows with more events than
# patients (impossible) are left out, as the engine's audit does; the JSON records which and
# the file's MD5 so the tests know they compare against the same input.
#
# The iterative estimators are run to tight convergence (threshold 1e-12, uniroot tol 1e-14)
# so that the reference is the exact solution of each estimating equation, not metafor's
# default stopping point (threshold 1e-5).
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
  library(lme4)
})

args <- commandArgs(trailingOnly = TRUE)
table1_path <- if (length(args) >= 1) args[1] else "reviews/ldh_resorption/baseline/table1_prevalence.csv"
table1 <- read.csv(table1_path, stringsAsFactors = FALSE)
impossible <- table1$n_resorbed > table1$n_total
table1_hash <- unname(tools::md5sum(table1_path))

datasets <- list(
  table1 = list(xi = table1$n_resorbed[!impossible], ni = table1$n_total[!impossible],
                source = "table1", excluded = table1$study[impossible]),
  small = list(xi = c(4, 12, 9, 30, 7, 15), ni = c(20, 40, 25, 60, 35, 30)),
  zeros = list(xi = c(0, 5, 12, 20, 3, 0, 9), ni = c(15, 25, 30, 20, 40, 10, 9)),
  k2 = list(xi = c(8, 30), ni = c(20, 45)),
  homogeneous = list(xi = c(10, 21, 29, 41, 50), ni = c(50, 100, 150, 200, 250))
)

measures <- c(logit = "PLO", PFT = "PFT", PAS = "PAS", PR = "PR")
methods <- c("REML", "DL", "PM", "ML")
tests <- c("z", "knha")
ctrl <- list(threshold = 1e-12, tol = 1e-14, maxiter = 10000)

back <- function(measure, ni) {
  switch(measure,
         PLO = list(transf = transf.ilogit, targs = NULL),
         PFT = list(transf = transf.ipft.hm, targs = list(ni = ni)),
         PAS = list(transf = transf.iarcsin, targs = NULL),
         PR = list(transf = NULL, targs = NULL))
}

one_fit <- function(d, transform, method, test) {
  measure <- measures[[transform]]
  es <- escalc(measure = measure, xi = d$xi, ni = d$ni)
  fit <- rma(yi, vi, data = es, method = method, test = test, control = ctrl)
  fe <- rma(yi, vi, data = es, method = "FE")
  pr <- predict(fit)
  bt <- back(measure, d$ni)
  prb <- if (is.null(bt$transf)) pr else predict(fit, transf = bt$transf, targs = bt$targs)
  feb <- if (is.null(bt$transf)) predict(fe) else predict(fe, transf = bt$transf, targs = bt$targs)
  list(transform = transform, method = method, test = test,
       yi = as.numeric(es$yi), vi = as.numeric(es$vi),
       b = as.numeric(fit$b), se = fit$se, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
       pi_lb = pr$pi.lb, pi_ub = pr$pi.ub, tau2 = fit$tau2, QE = fit$QE, QEp = fit$QEp,
       I2 = fit$I2, H2 = fit$H2,
       pred = prb$pred, pred_ci_lb = prb$ci.lb, pred_ci_ub = prb$ci.ub,
       pred_pi_lb = prb$pi.lb, pred_pi_ub = prb$pi.ub,
       fe_b = as.numeric(fe$b), fe_se = fe$se, fe_pred = feb$pred,
       fe_ci_lb = feb$ci.lb, fe_ci_ub = feb$ci.ub)
}

glmm_fit <- function(d) {
  fit <- rma.glmm(measure = "PLO", xi = d$xi, ni = d$ni, method = "ML")
  pr <- predict(fit)
  prb <- predict(fit, transf = transf.ilogit)
  list(b = as.numeric(fit$b), se = fit$se, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
       pi_lb = pr$pi.lb, pi_ub = pr$pi.ub, tau2 = fit$tau2, QE_LRT = fit$QE.LRT,
       QEp_LRT = fit$QEp.LRT, I2 = fit$I2, H2 = fit$H2, pred = prb$pred,
       pred_ci_lb = prb$ci.lb, pred_ci_ub = prb$ci.ub, pred_pi_lb = prb$pi.lb,
       pred_pi_ub = prb$pi.ub)
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  r_version = R.version.string,
  control = ctrl,
  table1_md5 = table1_hash,
  datasets = lapply(datasets, function(d) {
    fits <- list()
    for (tr in names(measures)) for (m in methods) for (t in tests)
      fits[[length(fits) + 1]] <- one_fit(d, tr, m, t)
    inputs <- if (is.null(d$source)) list(xi = d$xi, ni = d$ni) else
      list(source = d$source, excluded = d$excluded, k = length(d$xi))
    list(inputs = inputs, fits = fits, glmm = glmm_fit(d))
  })
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE))

# Golden values for services/meta_analysis/regression.py (meta-regression and subgroup
# moderator tests), computed with R metafor.
#
# Usage, from the repository root:
#   Rscript tests/reference/metafor_moderators.R | gzip -9 -n > tests/reference/metafor_moderators.json.gz
#
# Datasets are drawn from a fixed seed: proportions whose logit depends on a continuous moderator
# (follow-up in months, publication year, mean age) and on a three- or two-level factor, with
# between-study heterogeneity, study sizes from 8 to 2,000, some 0/n and n/n studies, and two
# small-k shapes (k = 4 and 5). Each dataset is fitted with `rma(yi, vi, mods = ~ x)` and
# `rma(yi, vi, mods = ~ factor(g))` for every measure x estimator x test, to tight convergence.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

set.seed(20261202)
ctrl <- list(threshold = 1e-12, tol = 1e-14, maxiter = 10000)
measures <- c(logit = "PLO", PFT = "PFT", PAS = "PAS", PR = "PR")
methods <- c("REML", "ML", "DL", "PM")
tests <- c("z", "knha")

make_dataset <- function(k, slope, spread, tau, levels) {
  x <- round(runif(k, spread[1], spread[2]), 1)
  g <- sample(levels, k, replace = TRUE)
  g[seq_along(levels)] <- levels  # every level occurs at least once
  effect <- c(0, 0.8, -0.5)[match(g, levels)]
  ni <- pmax(8, round(exp(runif(k, log(8), log(2000)))))
  logit <- -0.2 + slope * (x - mean(x)) + effect + rnorm(k, 0, tau)
  xi <- rbinom(k, ni, plogis(logit))
  list(xi = xi, ni = ni, x = x, g = g)
}

datasets <- list()
shapes <- list(
  list(k = 12, slope = 0.08, spread = c(1, 24), tau = 0.5, levels = c("contained", "extruded", "sequestered")),
  list(k = 20, slope = 0.02, spread = c(1985, 2023), tau = 0.8, levels = c("China", "Japan", "Turkey")),
  list(k = 8, slope = -0.04, spread = c(30, 60), tau = 0.3, levels = c("prospective", "retrospective")),
  list(k = 30, slope = 0.0, spread = c(3, 36), tau = 1.0, levels = c("CT", "MRI", "both")),
  list(k = 5, slope = 0.1, spread = c(2, 12), tau = 0.6, levels = c("a", "b")),
  list(k = 4, slope = 0.05, spread = c(6, 24), tau = 0.2, levels = c("a", "b"))
)
for (rep in 1:5) {
  for (s in seq_along(shapes)) {
    shape <- shapes[[s]]
    datasets[[sprintf("shape%d_rep%d", s, rep)]] <- do.call(make_dataset, shape)
  }
}
# Extreme proportions: 0/n and n/n studies beside ordinary ones.
datasets$extremes <- list(xi = c(0, 14, 9, 30, 0, 22, 12), ni = c(15, 14, 25, 60, 10, 22, 40),
                          x = c(3, 12, 6, 24, 2, 18, 9),
                          g = c("a", "b", "a", "b", "a", "b", "a"))
# One dominant study.
datasets$dominant <- list(xi = c(2610, 39, 54, 20, 31, 12, 8, 40), ni = c(6094, 41, 58, 30, 50, 20, 11, 60),
                          x = c(6, 12, 12, 3, 6, 24, 18, 9),
                          g = c("a", "b", "b", "a", "a", "b", "b", "a"))

fit_one <- function(es, mods, method, test) {
  fit <- rma(yi, vi, data = es, mods = mods, method = method, test = test, control = ctrl)
  list(
    b = as.numeric(fit$b), se = as.numeric(fit$se), zval = as.numeric(fit$zval),
    pval = as.numeric(fit$pval), ci_lb = as.numeric(fit$ci.lb), ci_ub = as.numeric(fit$ci.ub),
    QM = fit$QM, QMdf = as.numeric(fit$QMdf), QMp = fit$QMp,
    QE = fit$QE, QEp = fit$QEp, tau2 = fit$tau2, I2 = fit$I2, H2 = fit$H2,
    R2 = if (is.null(fit$R2) || is.na(fit$R2)) NULL else fit$R2,
    logLik = as.numeric(logLik(fit)), coef_names = rownames(fit$b)
  )
}

out <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  fits <- list()
  for (tr in names(measures)) {
    es <- escalc(measure = measures[[tr]], xi = d$xi, ni = d$ni)
    es$x <- d$x
    es$g <- d$g
    for (method in methods) {
      for (test in tests) {
        fits[[length(fits) + 1]] <- list(
          transform = tr, method = method, test = test,
          continuous = fit_one(es, ~ x, method, test),
          categorical = fit_one(es, ~ factor(g), method, test)
        )
      }
    }
  }
  out[[name]] <- list(xi = d$xi, ni = d$ni, x = d$x, g = d$g, fits = fits)
}

cat(toJSON(list(metafor_version = as.character(packageVersion("metafor")),
                r_version = R.version.string, control = ctrl, seed = 20261202,
                datasets = out),
           auto_unbox = TRUE, digits = NA, null = "null"))

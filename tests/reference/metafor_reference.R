# Golden values for services/meta_analysis, computed with R metafor (and lme4 for the GLMM).
#
# Usage, from the repository root (takes several minutes):
#   Rscript tests/reference/metafor_reference.R [TABLE1_CSV]
# writes tests/reference/metafor_reference.json.gz. TABLE1_CSV defaults to the review's baseline
# copy of the seed's Table 1 (reviews/ldh_resorption/baseline/table1_prevalence.csv); rows with
# more events than patients (impossible) are left out, as the engine's audit does; the JSON
# records the file's MD5 so the tests know they compare against the same input.
#
# Datasets: a few named ones (Table 1, small sets, the cases of issue 15) and GENERATED ones from
# a fixed seed, in shapes where the likelihood is awkward: ordinary, one dominant study, k = 2
# and 3, extreme proportions, 0/n and n/n, events of 1, very large n, no heterogeneity.
#
# For every dataset: each transform x estimator x test (rma.uni), the GLMM (rma.glmm, lme4), and
# leave1out() / cumul() rows (PFT back-transformed as metafor does: transf.ipft.hm with the
# sample sizes of ALL studies as targs, for every row).
#
# The iterative estimators are run to tight convergence (threshold 1e-12, uniroot tol 1e-14) so
# that the reference is the exact solution of each estimating equation; glmer likewise (bobyqa,
# rhoend 1e-10). For ML/REML the script also scans the profile (restricted) log-likelihood on a
# fine grid and records whether metafor's tau2 is its global maximum on [0, inf) ("global").
#
# Layout (compact, numbers to 9 significant digits, NA -> null): see the field-name vectors
# FIT_FIELDS, TM_FIELDS, TR_FIELDS, ROW_FIELDS, GLMM_FIELDS below (written into the JSON too).
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
  library(lme4)
})

args <- commandArgs(trailingOnly = TRUE)
table1_path <- if (length(args) >= 1) args[1] else "reviews/ldh_resorption/baseline/table1_prevalence.csv"
out_path <- "tests/reference/metafor_reference.json.gz"
table1 <- read.csv(table1_path, stringsAsFactors = FALSE)
impossible <- table1$n_resorbed > table1$n_total
table1_hash <- unname(tools::md5sum(table1_path))

named <- list(
  table1 = list(shape = "named", xi = table1$n_resorbed[!impossible], ni = table1$n_total[!impossible],
                source = "table1"),
  small = list(shape = "named", xi = c(4, 12, 9, 30, 7, 15), ni = c(20, 40, 25, 60, 35, 30)),
  zeros = list(shape = "named", xi = c(0, 5, 12, 20, 3, 0, 9), ni = c(15, 25, 30, 20, 40, 10, 9)),
  k2 = list(shape = "named", xi = c(8, 30), ni = c(20, 45)),
  homogeneous = list(shape = "named", xi = c(10, 21, 29, 41, 50), ni = c(50, 100, 150, 200, 250)),
  issue15_ml = list(shape = "issue", xi = c(2610, 39, 54), ni = c(6094, 41, 58)),
  issue15_reml = list(shape = "issue", xi = c(283, 15, 9, 21), ni = c(523, 19, 14, 46)),
  issue15_glmm_degenerate = list(shape = "issue", xi = c(0, 12), ni = c(12, 12))
)

# ---- generated datasets -------------------------------------------------------------------
set.seed(20261202)
expit <- function(x) 1 / (1 + exp(-x))
counts <- function(ni, logit_p) list(xi = rbinom(length(ni), ni, expit(logit_p)), ni = ni)
gen <- list(
  ordinary = function() {
    k <- sample(4:15, 1)
    counts(sample(15:400, k, replace = TRUE), rnorm(k, rnorm(1, 0.3, 1), runif(1, 0, 1.2)))
  },
  dominant = function() {
    k <- sample(c(8, 8, 5, 6, 10, 12), 1)
    ni <- c(sample(2000:20000, 1), sample(10:80, k - 1, replace = TRUE))
    mu <- rnorm(1, 0, 1)
    lp <- c(mu, rnorm(k - 1, mu + rnorm(1, 0, 1.5), runif(1, 0.2, 1.5)))
    perm <- sample(k)
    d <- counts(ni, lp)
    list(xi = d$xi[perm], ni = d$ni[perm])
  },
  k2 = function() counts(sample(8:300, 2, replace = TRUE), rnorm(2, rnorm(1, 0, 1.5), runif(1, 0, 2))),
  k3 = function() counts(sample(8:300, 3, replace = TRUE), rnorm(3, rnorm(1, 0, 1.5), runif(1, 0, 2))),
  k3_extreme = function() {
    ni <- sample(5:200, 3, replace = TRUE)
    counts(ni, rnorm(3, sample(c(-4.5, 4.5), 1), runif(1, 0, 2)))
  },
  extreme = function() {
    k <- sample(4:12, 1)
    counts(sample(10:300, k, replace = TRUE), rnorm(k, sample(c(-4, -3, 3, 4), 1), runif(1, 0, 1.5)))
  },
  zero_full = function() {
    k <- sample(3:10, 1)
    ni <- sample(5:60, k, replace = TRUE)
    xi <- rbinom(k, ni, expit(rnorm(k, 0, 1.5)))
    edge <- sample(k, sample(1:max(1, k - 1), 1))
    xi[edge] <- ifelse(runif(length(edge)) < 0.5, 0, ni[edge])
    list(xi = xi, ni = ni)
  },
  events1 = function() {
    k <- sample(10:15, 1)
    ni <- sample(c(sample(5:40, k, replace = TRUE), sample(100:2000, k, replace = TRUE)), k)
    xi <- pmin(ni, sample(c(1, 1, 1, 0, 2, 3), k, replace = TRUE))
    list(xi = xi, ni = ni)
  },
  large_n = function() {
    k <- sample(3:10, 1)
    counts(round(10^runif(k, 4, 7)), rnorm(k, rnorm(1, -1, 1.5), runif(1, 0, 0.6)))
  },
  homogeneous = function() {
    k <- sample(3:12, 1)
    counts(sample(20:500, k, replace = TRUE), rep(rnorm(1, 0, 1), k))
  }
)
sizes <- c(ordinary = 55, dominant = 40, k2 = 30, k3 = 30, k3_extreme = 25, extreme = 30,
           zero_full = 30, events1 = 25, large_n = 25, homogeneous = 12)
generated <- list()
for (shape in names(sizes)) for (i in seq_len(sizes[[shape]])) {
  d <- gen[[shape]]()
  generated[[sprintf("%s_%03d", shape, i)]] <- list(shape = shape, xi = as.numeric(d$xi),
                                                    ni = as.numeric(d$ni))
}
datasets <- c(named, generated)

# ---- fitting ------------------------------------------------------------------------------
measures <- c(logit = "PLO", PFT = "PFT", PAS = "PAS", PR = "PR")
methods <- c("REML", "DL", "PM", "ML")
tests <- c("z", "knha")
ctrl <- list(threshold = 1e-12, tol = 1e-14, maxiter = 10000)
glmer_ctrl <- list(glmerCtrl = list(optimizer = "bobyqa",
                                    optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
FIT_FIELDS <- c("b", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "pred", "pred_ci_lb",
                "pred_ci_ub", "pred_pi_lb", "pred_pi_ub")
TM_FIELDS <- c("tau2", "I2", "H2", "logLik", "global")
TR_FIELDS <- c("QE", "QEp", "fe_b", "fe_se", "fe_pred", "fe_ci_lb", "fe_ci_ub")
ROW_FIELDS <- c("estimate", "ci_lb_z", "ci_ub_z", "ci_lb_knha", "ci_ub_knha", "tau2", "I2")
GLMM_FIELDS <- c("b", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "QE_LRT", "I2",
                 "pred", "pred_ci_lb", "pred_ci_ub", "logLik")

back <- function(measure, ni) {
  switch(measure,
         PLO = list(transf = transf.ilogit, targs = NULL),
         PFT = list(transf = transf.ipft.hm, targs = list(ni = ni)),
         PAS = list(transf = transf.iarcsin, targs = NULL),
         PR = list(transf = NULL, targs = NULL))
}
attempt <- function(expr) tryCatch(suppressWarnings(expr), error = function(e) NULL)

# Profile (ML) or restricted (REML) log-likelihood at each tau2, as metafor's fit.stats.
profile_ll <- function(tau2, yi, vi, method) {
  w <- 1 / outer(tau2, vi, "+")
  sw <- rowSums(w)
  mu <- rowSums(w * rep(yi, each = length(tau2))) / sw
  rss <- rowSums(w * (outer(-mu, yi, "+"))^2)
  k <- length(yi)
  ll <- -k / 2 * log(2 * pi) - rowSums(log(outer(tau2, vi, "+"))) / 2 - rss / 2
  if (method == "REML") ll <- ll + log(2 * pi) / 2 + log(k) / 2 - log(sw) / 2
  ll
}
# 1 when no tau2 on a fine log grid (plus 0) beats metafor's answer by more than 1e-9.
is_global <- function(fit, yi, vi, method) {
  span <- diff(range(yi))^2
  top <- max(10 * (2 * span + sqrt(2 * span * max(vi))), 1e-8)
  grid <- c(0, 10^seq(log10(min(vi)) - 8, log10(top), length.out = 4000))
  best <- max(profile_ll(grid, yi, vi, method))
  as.numeric(best <= profile_ll(fit$tau2, yi, vi, method) + 1e-9)
}

rows_of <- function(fit_z, fit_k, bt, kind) {
  run <- function(fit) {
    f <- if (kind == "loo") leave1out else cumul
    if (is.null(bt$transf)) f(fit) else f(fit, transf = bt$transf, targs = bt$targs)
  }
  rz <- attempt(run(fit_z))
  rk <- if (is.null(fit_k)) NULL else attempt(run(fit_k))
  if (is.null(rz)) return(NULL)
  kk <- length(rz$estimate)
  pick <- function(r, name) if (is.null(r)) rep(NA_real_, kk) else as.numeric(r[[name]])
  m <- cbind(pick(rz, "estimate"), pick(rz, "ci.lb"), pick(rz, "ci.ub"), pick(rk, "ci.lb"),
             pick(rk, "ci.ub"), pick(rz, "tau2"), pick(rz, "I2"))
  unname(m)
}

fit_dataset <- function(d) {
  res <- list(tr = list(), tm = list(), fit = list(), loo = list(), cumul = list())
  for (tr in names(measures)) {
    measure <- measures[[tr]]
    es <- escalc(measure = measure, xi = d$xi, ni = d$ni)
    bt <- back(measure, d$ni)
    fe <- attempt(rma(yi, vi, data = es, method = "FE"))
    feb <- if (is.null(fe)) NULL else if (is.null(bt$transf)) predict(fe) else
      predict(fe, transf = bt$transf, targs = bt$targs)
    res$tr[[tr]] <- list(yi = as.numeric(es$yi), vi = as.numeric(es$vi),
                         v = if (is.null(fe)) rep(NA, length(TR_FIELDS)) else
                           c(fe$QE, fe$QEp, as.numeric(fe$b), fe$se, feb$pred, feb$ci.lb, feb$ci.ub))
    for (m in methods) {
      fits <- list()
      for (t in tests) {
        key <- paste(tr, m, t, sep = "/")
        fit <- attempt(rma(yi, vi, data = es, method = m, test = t, control = ctrl))
        fits[[t]] <- fit
        if (is.null(fit)) { res$fit[[key]] <- rep(NA, length(FIT_FIELDS)); next }
        pr <- predict(fit)
        prb <- if (is.null(bt$transf)) pr else predict(fit, transf = bt$transf, targs = bt$targs)
        res$fit[[key]] <- c(as.numeric(fit$b), fit$se, fit$ci.lb, fit$ci.ub, pr$pi.lb, pr$pi.ub,
                            prb$pred, prb$ci.lb, prb$ci.ub, prb$pi.lb, prb$pi.ub)
      }
      tm <- paste(tr, m, sep = "/")
      fz <- fits[["z"]]
      res$tm[[tm]] <- if (is.null(fz)) rep(NA, length(TM_FIELDS)) else
        c(fz$tau2, fz$I2, fz$H2, as.numeric(logLik(fz)),
          if (m %in% c("ML", "REML")) is_global(fz, as.numeric(es$yi), as.numeric(es$vi), m) else NA)
      if (!is.null(fz)) {
        res$loo[[tm]] <- rows_of(fz, fits[["knha"]], bt, "loo")
        res$cumul[[tm]] <- rows_of(fz, fits[["knha"]], bt, "cumul")
      }
    }
  }
  g <- attempt(rma.glmm(measure = "PLO", xi = d$xi, ni = d$ni, method = "ML", control = glmer_ctrl))
  res$glmm <- if (is.null(g)) NULL else {
    pr <- predict(g)
    prb <- predict(g, transf = transf.ilogit)
    c(as.numeric(g$b), g$se, g$ci.lb, g$ci.ub, pr$pi.lb, pr$pi.ub, g$tau2, g$QE.LRT, g$I2,
      prb$pred, prb$ci.lb, prb$ci.ub, g$fit.stats["ll", "ML"])
  }
  res
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  r_version = R.version.string,
  control = ctrl,
  table1_md5 = table1_hash,
  fields = list(fit = FIT_FIELDS, tm = TM_FIELDS, tr = TR_FIELDS, row = ROW_FIELDS,
                glmm = GLMM_FIELDS),
  datasets = lapply(names(datasets), function(name) {
    d <- datasets[[name]]
    inputs <- if (is.null(d$source)) list(xi = d$xi, ni = d$ni) else
      list(source = d$source, k = length(d$xi))
    c(list(name = name, shape = d$shape), inputs, fit_dataset(d))
  })
)
handle <- gzfile(out_path, "w")
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(9), na = "null"), handle)
close(handle)
cat(sprintf("%d datasets written to %s\n", length(datasets), out_path))

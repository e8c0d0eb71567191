"""Meta-analysis commands: ``pool`` (any CSV, no database), ``estimates``, ``audit``, ``plot``.

``--json`` output (stable; proportions on 0–1, I² in %):

- ``pool`` / ``estimates``: ``{"result": {...}, "audit": [...], "excluded": {...},
  "subgroups": {...}?}`` — see :mod:`services.meta_analysis.analysis` for every field;
  ``estimates`` adds ``"review"`` and, with ``--save``, ``"snapshot_id"`` and ``"changes"``.
- ``audit``: ``{"review": slug, "k": n, "findings": [{"severity", "code", "study", "message",
  "excludes"}], "excluded": {label: reason}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.cli.context import Context, context
from services.cli.errors import CliError

if TYPE_CHECKING:
    from services.meta_analysis.analysis import Analysis
    from services.meta_analysis.audit import Headline
    from services.meta_analysis.regression import RegressionResult
    from services.meta_analysis.studies import Study
from services.protocol import Protocol

ReviewOpt = Annotated[str, typer.Option("--review", "-r", help="Review folder under reviews/.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (documented keys).")]
MethodOpt = Annotated[
    str | None, typer.Option("--method", help="REML, DL, PM, ML or GLMM (default: protocol/REML).")
]
TransformOpt = Annotated[
    str | None, typer.Option("--transform", help="logit, PFT, PAS or PR (default: protocol/logit).")
]
TestOpt = Annotated[str | None, typer.Option("--test", help="z or knha (Hartung–Knapp).")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Subgroups by a field: design, country, decade, …")
]
ModeratorOpt = Annotated[
    str | None,
    typer.Option("--moderator", help="Meta-regression on a field: follow_up, year, age_range, …"),
]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _print_analysis(analysis: Analysis) -> None:
    res = analysis.result
    for f in analysis.findings:
        typer.echo(f"[{f.severity}] {f.code}: {f.study or '(all studies)'}: {f.message}")
    if not res.pooled:
        typer.echo("; ".join(res.notes))
        return
    typer.echo(
        f"{res.method} {res.transform} ({res.test}), k = {res.k}, {res.events}/{res.total}\n"
        f"  random effects: {_pct(res.estimate)} [{_pct(res.ci_low)}; {_pct(res.ci_high)}], "
        f"prediction interval [{_pct(res.pi_low)}; {_pct(res.pi_high)}]\n"
        f"  common effect:  {_pct(res.common_estimate)} [{_pct(res.common_ci_low)}; "
        f"{_pct(res.common_ci_high)}]\n"
        f"  heterogeneity: I² = {res.i2:.1f}% ({res.heterogeneity_class}), tau² = {res.tau2:.4f}, "
        f"Q = {res.q:.2f} (df {res.q_df}), p = {res.q_p:.2g}"
    )
    for note in res.notes:
        typer.echo(f"  note: {note}")
    if analysis.subgroups is not None:
        sg = analysis.subgroups
        for name, group in sg.groups.items():
            typer.echo(
                f"  {sg.by} = {name}: k = {group.k}, {_pct(group.estimate)} "
                f"[{_pct(group.ci_low)}; {_pct(group.ci_high)}]"
            )
        if sg.q_between is not None:
            typer.echo(
                f"  between groups: Q = {sg.q_between:.2f} (df {sg.df_between}), "
                f"p = {sg.p_between:.2g}"
            )


def _print_moderator(model: RegressionResult) -> None:
    typer.echo(
        f"meta-regression on {model.moderator} ({model.kind}; {model.method} {model.transform}, "
        f"{model.test}), k = {model.k}"
    )
    for c in model.coefficients:
        typer.echo(
            f"  {c.name}: {c.estimate:.4f} (SE {c.se:.4f}), p = {c.p:.3g}, "
            f"CI [{c.ci_low:.4f}; {c.ci_high:.4f}]"
        )
    df = model.qm_df[0] if model.qm_df[1] is None else f"{model.qm_df[0]}, {model.qm_df[1]}"
    typer.echo(
        f"  test of moderators: QM = {model.qm:.3f} (df {df}), p = {model.qm_p:.3g}; "
        f"residual tau² = {model.tau2:.4f}, I² = {model.i2:.1f}%, "
        f"R² = {'–' if model.r2 is None else f'{model.r2:.1f}%'}"
    )
    for note in model.notes:
        typer.echo(f"  note: {note}")


def _moderator(
    studies: list[Study], name: str, options: dict[str, Any], *, kind: str | None = None
) -> RegressionResult:
    """The meta-regression of ``studies`` on field ``name`` (durations in months, ranges' centres)."""
    from services.meta_analysis.errors import MetaAnalysisError
    from services.meta_analysis.moderators import numeric_value
    from services.meta_analysis.regression import meta_regression

    if str(options["method"]).upper() == "GLMM":
        raise CliError("meta-regression uses REML, ML, DL or PM, not GLMM: pass --method")
    raw = [s.value(name) for s in studies]
    numbers = [numeric_value(s, name) for s in studies]
    if kind is None:
        present = [(r, v) for r, v in zip(raw, numbers, strict=True) if r not in (None, "")]
        kind = "continuous" if present and all(v is not None for _, v in present) else "categorical"
    values = numbers if kind == "continuous" else raw
    try:
        return meta_regression(studies, name, kind=kind, values=values, **options)
    except MetaAnalysisError as exc:
        raise CliError(str(exc)) from exc


def _options(
    method: str | None, transform: str | None, test: str | None, outcome: Any = None
) -> dict[str, Any]:
    return {
        "method": method or (outcome.method if outcome else "REML"),
        "transform": transform or (outcome.transform if outcome else "logit"),
        "test": test or (outcome.test if outcome else "z"),
    }


def _run(studies: list[Study], **kwargs: Any) -> Analysis:
    from services.meta_analysis.analysis import analyse
    from services.meta_analysis.errors import MetaAnalysisError

    try:
        return analyse(studies, **kwargs)
    except MetaAnalysisError as exc:
        raise CliError(str(exc)) from exc


def pool_csv(
    file: Annotated[Path, typer.Argument(help="CSV with study,events,total[,group,year].")],
    method: MethodOpt = None,
    transform: TransformOpt = None,
    test: TestOpt = None,
    by: ByOpt = None,
    moderator: ModeratorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit and pool any CSV of studies (no database); --by subgroups, --moderator regression.

    Exits 1 with one ``error:`` line when the file cannot be read (a missing column, no rows,
    past the size limit), a cell is bad, or fewer than two studies (or a degenerate GLMM) leave
    nothing to pool.
    """
    from services.meta_analysis.errors import MetaAnalysisError
    from services.meta_analysis.studies import read_studies_csv

    if not file.is_file():
        raise CliError(f"{file} does not exist")
    try:
        studies = read_studies_csv(file)
    except MetaAnalysisError as exc:
        raise CliError(f"{file.name}: {exc}") from exc
    options = _options(method, transform, test)
    analysis = _run(studies, by=by, **options)
    if not analysis.result.pooled:
        left_out = "; ".join(f"{label}: {why}" for label, why in analysis.excluded.items())
        raise CliError(
            f"{file.name}: "
            + "; ".join(analysis.result.notes)
            + (f" (left out by the audit: {left_out})" if left_out else "")
        )
    _report(analysis, by, moderator, options, {}, json_out)


def _report(
    analysis: Analysis,
    by: str | None,
    moderator: str | None,
    options: dict[str, Any],
    data: dict[str, Any],
    json_out: bool,
) -> None:
    """Print (or dump as JSON) the analysis with its subgroup and moderator models."""
    models = {}
    if by is not None:
        models["subgroup_model"] = _moderator(analysis.included, by, options, kind="categorical")
    if moderator is not None:
        models["moderator"] = _moderator(analysis.included, moderator, options)
    if json_out:
        out = {**data, **analysis.to_dict(), **{k: m.to_dict() for k, m in models.items()}}
        # Indented for a readable size; compact past 10,000 studies (the C encoder, far faster).
        indent = 2 if len(analysis.included) <= 10_000 else None
        typer.echo(json.dumps(out, indent=indent))
        return
    _print_analysis(analysis)
    if "subgroup_model" in models:
        typer.echo("  mixed-effects subgroup model (one tau², metafor mods = ~ factor):")
        _print_moderator(models["subgroup_model"])
    if "moderator" in models:
        _print_moderator(models["moderator"])


def _review_analysis(
    ctx: Context,
    slug: str,
    by: str | None,
    options: dict[str, Any],
) -> tuple[Analysis, Any]:
    from sqlalchemy import select

    from db.models import Review
    from services.meta_analysis.store import load_studies

    protocol = ctx.protocol(slug)
    with ctx.sessions()() as session:
        review = session.scalars(select(Review).where(Review.slug == slug)).first()
        if review is None:
            raise CliError(f"review {slug!r} is not in the database; run living-review init")
        studies = load_studies(
            session,
            review.id,
            events_field=protocol.outcome.events_field,
            total_field=protocol.outcome.total_field,
        )
    return _run(studies, headline=_headline(protocol), by=by, **options), protocol


def _headline(protocol: Any) -> Headline | None:
    from services.meta_analysis.audit import Headline

    raw = protocol.outcome.headline
    if not raw:
        return None
    return Headline(
        events=_int(raw.get("events")),
        total=_int(raw.get("total")),
        percent=raw.get("percent"),
        k=_int(raw.get("k")),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def estimates(
    review: ReviewOpt = "ldh_resorption",
    method: MethodOpt = None,
    transform: TransformOpt = None,
    test: TestOpt = None,
    by: ByOpt = None,
    moderator: ModeratorOpt = None,
    hypotheses: Annotated[
        bool, typer.Option("--hypotheses", help="Test the protocol's subgroup hypotheses.")
    ] = False,
    save: Annotated[
        bool, typer.Option("--save", help="Store a snapshot and report changes.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Pooled estimate of the review's included studies, with its data audit."""
    ctx = context()
    protocol = ctx.protocol(review)
    options = _options(method, transform, test, protocol.outcome)
    analysis, _ = _review_analysis(ctx, review, by, options)
    if hypotheses:
        _print_hypotheses(analysis, protocol, options, review, json_out)
        return
    data: dict[str, Any] = {"review": review}
    if save:
        data.update(_save(ctx, review, protocol, options))
    _report(analysis, by, moderator, options, data, json_out)
    if save and not json_out:
        typer.echo(
            f"snapshot {data['snapshot_id']}: "
            + ("; ".join(data["changes"]["reasons"]) or "no change past the thresholds")
        )


def _print_hypotheses(
    analysis: Analysis, protocol: Protocol, options: dict[str, Any], review: str, json_out: bool
) -> None:
    from services.meta_analysis.moderators import check_hypotheses

    if str(options["method"]).upper() == "GLMM":
        raise CliError("hypotheses are tested with REML, ML, DL or PM, not GLMM: pass --method")
    specs = [h.spec() for h in protocol.analysis.hypotheses]
    if not specs:
        raise CliError(f"review {review!r} declares no [[analysis.hypotheses]] in its protocol")
    results = check_hypotheses(analysis.included, specs, **options)
    if json_out:
        typer.echo(
            json.dumps({"review": review, "hypotheses": [r.to_dict() for r in results]}, indent=2)
        )
        return
    for r in results:
        typer.echo(r.sentence())


def _save(ctx: Context, review: str, protocol: Protocol, options: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import select

    from db.models import Review
    from services.meta_analysis.snapshots import Thresholds
    from services.meta_analysis.store import record_snapshot

    with ctx.sessions().begin() as session:
        row = session.scalars(select(Review).where(Review.slug == review)).one()
        snap, changes, _ = record_snapshot(
            session,
            row,
            outcome=protocol.outcome.name,
            options=options,
            headline=_headline(protocol),
            thresholds=Thresholds.from_mapping(protocol.digest.thresholds.model_dump()),
            events_field=protocol.outcome.events_field,
            total_field=protocol.outcome.total_field,
            hypotheses=[h.spec() for h in protocol.analysis.hypotheses],
        )
        return {"snapshot_id": snap.id, "changes": changes.to_dict()}


def audit_cmd(review: ReviewOpt = "ldh_resorption", json_out: JsonOpt = False) -> None:
    """Data audit of the review's prevalence extractions (impossible rows, mismatches, duplicates)."""
    ctx = context()
    protocol = ctx.protocol(review)
    analysis, _ = _review_analysis(ctx, review, None, _options(None, None, None, protocol.outcome))
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "review": review,
                    "k": len(analysis.included) + len(analysis.excluded),
                    "findings": [f.to_dict() for f in analysis.findings],
                    "excluded": analysis.excluded,
                },
                indent=2,
            )
        )
        return
    for f in analysis.findings:
        typer.echo(f"[{f.severity}] {f.code}: {f.study or '(all studies)'}: {f.message}")
    typer.echo(f"{len(analysis.findings)} findings; {len(analysis.excluded)} studies left out")


def plot(
    kind: Annotated[str, typer.Argument(help="forest, cumulative or bubble")],
    out: Annotated[Path, typer.Option("--out", help="Output file, .png or .svg.")],
    review: ReviewOpt = "ldh_resorption",
    method: MethodOpt = None,
    transform: TransformOpt = None,
    test: TestOpt = None,
    by: ByOpt = None,
    moderator: ModeratorOpt = None,
) -> None:
    """Draw the review's forest plot (optionally by subgroup), cumulative or bubble plot."""
    from services.meta_analysis.breakdowns import cumulative
    from services.meta_analysis.plots import cumulative_plot, forest_plot

    if kind not in ("forest", "cumulative", "bubble"):
        raise CliError(f"plot kind must be forest, cumulative or bubble, got {kind!r}")
    if kind == "bubble" and moderator is None:
        raise CliError("plot bubble needs --moderator FIELD (a continuous field)")
    if out.suffix.lower() not in (".png", ".svg"):
        raise CliError(f"--out must end in .png or .svg, got {out.name!r}")
    ctx = context()
    protocol = ctx.protocol(review)
    options = _options(method, transform, test, protocol.outcome)
    analysis, _ = _review_analysis(ctx, review, by if kind == "forest" else None, options)
    title = protocol.title
    if kind == "bubble":
        from services.meta_analysis.bubble import bubble_plot

        model = _moderator(analysis.included, str(moderator), options, kind="continuous")
        bubble_plot(model, out, title=f"{title}: {moderator}")
    elif kind == "cumulative":
        if str(options["method"]).upper() == "GLMM":
            options["method"] = "REML"
        rows = cumulative(analysis.included, **options)
        cumulative_plot(rows, out, title=f"{title}: cumulative meta-analysis")
    else:
        sg = analysis.subgroups
        q_text = None
        if sg is not None and sg.q_between is not None:
            p = "p < 0.001" if (sg.p_between or 0) < 0.001 else f"p = {sg.p_between:.3f}"
            q_text = (
                f"Test for subgroup differences: Q = {sg.q_between:.2f}, df = {sg.df_between}, {p}"
            )
        forest_plot(
            analysis.result if sg is None else sg.overall,
            out,
            subgroups=None if sg is None else sg.groups,
            q_between=q_text,
            excluded=analysis.excluded,
            title=title,
        )
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add pool, estimates, audit and plot to the ``living-review`` app."""
    app.command("pool")(pool_csv)
    app.command("estimates")(estimates)
    app.command("audit")(audit_cmd)
    app.command("plot")(plot)

"""The verdicts: for one decided window, what does a dip in one lens mean in the other?

- CX dip of a cohort -> SRE dips of the services its page views depended on (all services
  when the cohort has no links), in the same or an adjacent window: `cx_dip_explained`
  with ranked candidates, else `cx_dip_unexplained`.
- SRE dip of a service -> CX dips of cohorts that depend on it, same or adjacent window:
  `sre_dip_user_impacting` with the cohorts and their share of sessions, else
  `sre_dip_no_user_impact` with why (no dependents, off-peak, cohorts flat).

Candidate score = size x alignment x dependency share, each in [0, 1]:
size = r / (1 + r) of the relative worsening r of the service's metric vs its baseline
(for availability: of the unavailable share); alignment = 1 for the same window,
`adjacent_alignment` ** distance otherwise; dependency share = share of the cohort's page
views (over the last `link_windows` windows) that depended on the service (1 when the
cohort has no links). Every candidate carries this product written out.

Reads only windows up to `window + lag`, all complete in both lenses when it runs.
"""
from app.core.detect.context import Context
from app.core.detect.dips import CX, SRE
from app.core.detect.incidents import alert_id, evidence_entry, pct, relative_change


def own_evidence(ctx: Context, lens: str, subject: str) -> list[dict]:
    """The subject's dipped metrics in window w, worst first."""
    checks = ctx.known_entry(lens, ctx.w, subject)["checks"]
    dipped = sorted((m for m in checks if checks[m]["dip"]), key=lambda m: (-checks[m]["size"], m))
    return [evidence_entry(lens, subject, ctx.w, m, checks[m]) for m in dipped]


def flat_evidence(ctx: Context, lens: str, subjects: list[str]) -> list[dict]:
    """The most-moved metric of each subject in window w, to show the other lens was flat."""
    out = []
    for subject in subjects[: ctx.cfg.max_evidence_subjects]:
        checks = (ctx.entry(lens, ctx.w, subject) or {}).get("checks", {})
        if checks:
            metric = min(checks, key=lambda m: (-_closeness(checks[m]), m))
            out.append(evidence_entry(lens, subject, ctx.w, metric, checks[metric]))
    return out


def _closeness(check: dict) -> float:
    """How far towards its dip threshold a metric moved: 0 at baseline, 1 at threshold."""
    span = check["threshold"] - check["baseline"]
    return (check["value"] - check["baseline"]) / span if span else 0.0


def _by_share(pool: dict[str, float | None]) -> list[str]:
    return sorted(pool, key=lambda s: (-_share_or_one(pool[s]), s))


def _share_or_one(share: float | None) -> float:
    return 1.0 if share is None else share


# ---- CX dip of a cohort --------------------------------------------------------------------
def cx_verdict(ctx: Context, cohort: str) -> dict:
    shares = ctx.link_shares(cohort)
    pool: dict[str, float | None] = (
        {s: v for s, v in shares.items() if v >= ctx.cfg.min_dependency_share} if shares
        else {s: None for s in ctx.subjects_near(SRE)})
    found = [c for s in sorted(pool) if (c := _candidate(ctx, s, pool[s])) is not None]
    found.sort(key=lambda c: (-c[0]["score"], c[0]["service"]))
    candidates = [c for c, _, _ in found]
    sessions, share = ctx.sessions_share(ctx.w, cohort)
    traffic = ctx.known_entry(CX, ctx.w, cohort)["traffic"]
    shown = found[: ctx.cfg.max_evidence_subjects]
    evidence = own_evidence(ctx, CX, cohort) + (
        [evidence_entry(SRE, c["service"], c["window_start"], c["metric"], check)
         for c, check, _ in shown] if shown else flat_evidence(ctx, SRE, _by_share(pool)))
    involved = ([c["service"] for c, _, _ in shown]
                or _by_share(pool)[: ctx.cfg.max_evidence_subjects])
    return {
        "kind": "cx_dip_explained" if candidates else "cx_dip_unexplained",
        "lens": CX, "subject": cohort,
        "severity": "critical" if share >= ctx.cfg.critical_session_share else "warning",
        "services": sorted(c["service"] for c in candidates), "cohorts": [cohort],
        "evidence": evidence, "candidates": candidates,
        "impact": {"sessions": sessions, "session_share": round(share, 6),
                   "page_views": ctx.known_record(CX, ctx.w, cohort)["volume"]["page_views"],
                   "traffic_vs_usual": _ratio(traffic["volume"], traffic["median"]),
                   "dependency_links": bool(shares)},
        "correlations": ctx.correlations([(s, cohort) for s in sorted(involved)]),
        "related_alert_ids": sorted(alert_id(SRE, c["service"], start) for c, _, start in found),
    }


def _candidate(ctx: Context, service: str,
               share: float | None) -> tuple[dict, dict, int] | None:
    """(candidate, the SRE check behind it, start of the service's incident) or None."""
    best = ctx.best_dip(SRE, service, 1.0 if share is None else share)
    if best is None:
        return None
    check, alignment, offset = best["check"], best["alignment"], best["offset"]
    change = relative_change(check)
    where = ("same window" if offset == 0 else
             f"{abs(offset)} window(s) {'earlier' if offset < 0 else 'later'}")
    share_txt = "n/a (no links: all services considered)" if share is None else f"{share:.2f}"
    candidate = {
        "service": service, "score": round(best["score"], 6), "metric": best["metric"],
        "change": change, "window_start": ctx.w + offset * ctx.step, "offset_windows": offset,
        "size": round(check["size"], 6), "alignment": round(alignment, 6),
        "dependency_share": None if share is None else round(share, 6),
        "explanation": (f"size {check['size']:.2f} ({best['metric']} {pct(change)}) x "
                        f"alignment {alignment:.2f} ({where}) x dependency share {share_txt} "
                        f"= {best['score']:.2f}")}
    return candidate, check, best["start"]


# ---- SRE dip of a service ------------------------------------------------------------------
def sre_verdict(ctx: Context, service: str) -> dict:
    dependents = _dependents(ctx, service)
    affected, related = _affected(ctx, dependents)
    traffic = ctx.known_entry(SRE, ctx.w, service)["traffic"]
    vs_peak = _ratio(traffic["volume"], traffic["peak"])
    session_share = min(1.0, sum(a["session_share"] for a in affected))
    impact = {"cohorts": affected, "sessions_affected": sum(a["sessions"] for a in affected),
              "session_share": round(session_share, 6), "dependent_cohorts": sorted(dependents),
              "requests": traffic["volume"],
              "traffic_vs_usual": _ratio(traffic["volume"], traffic["median"]),
              "traffic_vs_peak": vs_peak,
              "off_peak": vs_peak is not None and vs_peak < ctx.cfg.off_peak_ratio}
    names = [a["cohort"] for a in affected]
    if affected:
        severity = "critical" if session_share >= ctx.cfg.critical_session_share else "warning"
        other = [evidence_entry(CX, a["cohort"], ctx.w + a["offset_windows"] * ctx.step,
                                a["metric"], _check_of(ctx, a)) for a in affected]
    else:
        severity = "info"
        impact["reasons"], impact["why"] = _why_no_impact(ctx, dependents, impact)
        other = flat_evidence(ctx, CX, _by_share(dependents))
    shown = names or _by_share(dependents)
    return {
        "kind": "sre_dip_user_impacting" if affected else "sre_dip_no_user_impact",
        "lens": SRE, "subject": service, "severity": severity,
        "services": [service], "cohorts": names,
        "evidence": own_evidence(ctx, SRE, service) + other[: ctx.cfg.max_evidence_subjects],
        "candidates": [], "impact": impact,
        "correlations": ctx.correlations(
            [(service, c) for c in sorted(shown[: ctx.cfg.max_evidence_subjects])]),
        "related_alert_ids": sorted(related),
    }


def _affected(ctx: Context, dependents: dict) -> tuple[list[dict], list[str]]:
    """Dependent cohorts that dipped near w (each with its sessions in the window it
    dipped), and the ids of their incidents."""
    affected, related = [], []
    for cohort in sorted(dependents):
        best = ctx.best_dip(CX, cohort, 1.0)
        if best is None:
            continue
        sessions, share = ctx.sessions_share(ctx.w + best["offset"] * ctx.step, cohort)
        share_dep = dependents[cohort]
        affected.append({"cohort": cohort, "sessions": sessions,
                         "session_share": round(share, 6),
                         "dependency_share": None if share_dep is None else round(share_dep, 6),
                         "metric": best["metric"], "change": relative_change(best["check"]),
                         "offset_windows": best["offset"]})
        related.append(alert_id(CX, cohort, best["start"]))
    return affected, related


def _dependents(ctx: Context, service: str) -> dict[str, float | None]:
    """cohort -> dependency share on the service; every cohort (share None) when no cohort
    reports links at all, as the lens then cannot tell who depends on what."""
    cohorts = ctx.subjects_near(CX)
    if not any(ctx.link_shares(c) for c in cohorts):
        return {c: None for c in cohorts}
    shares = {c: ctx.link_shares(c).get(service, 0.0) for c in cohorts}
    return {c: v for c, v in shares.items() if v >= ctx.cfg.min_dependency_share}


def _why_no_impact(ctx: Context, dependents: dict, impact: dict) -> tuple[list[str], str]:
    reasons, words = [], []
    vs_peak = impact["traffic_vs_peak"]
    if impact["off_peak"]:
        reasons.append("off_peak")
        words.append(f"traffic at {vs_peak * 100:.0f}% of its usual peak (off-peak)")
    if not dependents:
        reasons.append("no_dependent_cohorts")
        words.append("no cohort's page views depend on it")
    elif any((ctx.entry(CX, ctx.w, c) or {}).get("checks") for c in dependents):
        reasons.append("dependent_cohorts_flat")
        names = _by_share(dependents)
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        words.append(f"dependent cohorts flat ({', '.join(names[:3])}{more})")
    else:
        reasons.append("dependent_cohorts_not_judged")
        words.append("dependent cohorts too small to judge or still warming up")
    if not impact["off_peak"] and vs_peak is not None:
        words.append(f"traffic at {vs_peak * 100:.0f}% of its usual peak")
    return reasons, "; ".join(words)


def _check_of(ctx: Context, affected: dict) -> dict:
    ws = ctx.w + affected["offset_windows"] * ctx.step
    return ctx.known_entry(CX, ws, affected["cohort"])["checks"][affected["metric"]]


def _ratio(value: float, usual: float | None) -> float | None:
    return round(value / usual, 6) if usual else None

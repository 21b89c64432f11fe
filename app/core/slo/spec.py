"""SLO definitions: objectives, burn-window pairs, durations, and the checks they must pass.

Plain frozen dataclasses. `loader.load_slos` builds them from a file (reporting each
problem with its line); code and tests may build them directly, and `Slo.problems` runs the
same checks without line numbers. docs/SLO.md describes the file format.

Numbers that decide whether a pair trips are compared exactly (fractions of the decimal
text the user wrote): 99.9 % with 14.4x is an error ratio of exactly 1.44 %, whereas in
binary floating point 1 - 0.999 is 0.0010000000000000009 and the boundary would shift.
"""
import re
from dataclasses import dataclass
from fractions import Fraction

PAGE, TICKET = "page", "ticket"
ACTIONS = (PAGE, TICKET)
SEVERITY = {PAGE: "critical", TICKET: "warning"}
ERRORS, LATENCY = "errors", "latency"
SLIS = (ERRORS, LATENCY)

DEFAULT_PERIOD_S = 30 * 86400
# The low-traffic guard (docs/SLO.md, "Low traffic"): a page needs this much evidence in
# the pair's long window. 1000 requests keeps a 99.9 % objective meaningful (one error
# in a thousand is the whole budget); 10 bad events keeps three errors at 3 a.m. quiet.
DEFAULT_MIN_REQUESTS = 1000
DEFAULT_MIN_BAD_EVENTS = 10.0

_UNITS_S = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class SloConfigError(ValueError):
    """Every problem found in an SLO definition, one line each (`file:line: reason`)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def parse_duration(text: str) -> int:
    """Prometheus-style duration ("30d", "6h", "1h30m", "90s") -> seconds; ValueError if not."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"is not a duration like 30d, 6h, 5m or 1h30m (got {text!r})")
    seconds = sum(int(n) * _UNITS_S[u] for n, u in zip(match.groups(), "wdhms", strict=True) if n)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration (got {text!r})")
    return seconds


def duration_text(seconds: int) -> str:
    """Seconds -> the shortest duration text: 300 -> "5m", 259200 -> "3d", 5400 -> "1h30m".
    Also the `window` label of the burn-rate gauge."""
    parts, rest = [], int(seconds)
    for unit, size in _UNITS_S.items():
        if rest >= size and (unit != "w" or rest % size == 0):  # "30d", never "4w2d"
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def exact(x: float) -> Fraction:
    """The decimal the user wrote (shortest repr of the float), as an exact fraction."""
    return Fraction(repr(float(x)))


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window pair: trips when the burn rate over both windows is >= factor."""

    action: str  # page | ticket
    long_s: int
    short_s: int
    factor: float
    guarded: bool  # the low-traffic guard applies (pages by default, not tickets)

    @property
    def label(self) -> str:
        return f"{duration_text(self.long_s)}/{duration_text(self.short_s)}"


# Google SRE workbook, chapter 5, for a 30-day SLO: 2 % of the budget in 1 h, 5 % in 6 h
# page; 10 % in 3 d tickets. The short window makes the alert stop soon after the burn does.
WORKBOOK_WINDOWS = (
    BurnWindow(PAGE, 3600, 300, 14.4, True),
    BurnWindow(PAGE, 6 * 3600, 1800, 6.0, True),
    BurnWindow(TICKET, 3 * 86400, 6 * 3600, 1.0, False),
)


@dataclass(frozen=True)
class Slo:
    service: str
    name: str
    objective_percent: float  # 99.9 = 99.9 % of requests good
    sli: str = ERRORS  # errors: bad = the window's errors; latency: bad = slower than threshold
    threshold_ms: float | None = None
    period_s: int = DEFAULT_PERIOD_S
    windows: tuple[BurnWindow, ...] = WORKBOOK_WINDOWS
    min_requests: int = DEFAULT_MIN_REQUESTS
    min_bad_events: float = DEFAULT_MIN_BAD_EVENTS
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    where: str = ""  # "slo.yaml:12": where it was defined, for messages

    @property
    def objective_ratio(self) -> float:
        return float(exact(self.objective_percent) / 100)

    @property
    def budget(self) -> Fraction:
        """The error budget as a ratio of requests (0.001 for 99.9 %), exact."""
        return 1 - exact(self.objective_percent) / 100

    @property
    def sli_key(self) -> str:
        """What "bad" means: history counted under another definition is not reused."""
        return ERRORS if self.sli == ERRORS else f"{LATENCY}>{self.threshold_ms!r}ms"

    def horizons_s(self) -> list[int]:
        return sorted({s for w in self.windows for s in (w.long_s, w.short_s)})

    def problems(self, window_s: int) -> list[str]:
        """The same checks as the file loader, for SLOs built in code."""
        where = f"{self.where}: " if self.where else f"slo {self.service}/{self.name}: "
        found = [check_objective(self.objective_percent),
                 check_period(self.period_s, window_s, self.windows)]
        if self.sli not in SLIS:
            found.append(f"sli type must be one of {', '.join(SLIS)} (got {self.sli!r})")
        elif self.sli == LATENCY and not (self.threshold_ms or 0) > 0:
            found.append(f"threshold_ms must be > 0 (got {self.threshold_ms!r})")
        for w in self.windows:
            found += [check_window(w.long_s, window_s), check_window(w.short_s, window_s),
                      check_pair(w, self.objective_percent)]
        return [where + p for p in found if p]


def check_objective(percent: float) -> str | None:
    if not 0 < percent < 100:
        return f"objective must be between 0 and 100 (got {percent:g})"
    return None


def check_window(seconds: int, window_s: int) -> str | None:
    if seconds % window_s:
        return (f"window {duration_text(seconds)} is not a whole number of "
                f"{window_s} s windows (LENSBRIDGE_WINDOW_SECONDS)")
    return None


def check_pair(w: BurnWindow, objective_percent: float | None) -> str | None:
    if w.action not in ACTIONS:
        return f"action must be page or ticket (got {w.action!r})"
    if w.short_s >= w.long_s:
        return (f"short window {duration_text(w.short_s)} must be shorter than the long "
                f"window {duration_text(w.long_s)}")
    if not w.factor > 0:
        return f"burn_rate must be > 0 (got {w.factor:g})"
    if objective_percent is None or not 0 < objective_percent < 100:
        return None  # reported on the objective itself
    needed = exact(w.factor) * (1 - exact(objective_percent) / 100)
    if needed > 1:
        # Silent never-firing alerts are worse than a refusal to start.
        return (f"burn_rate {w.factor:g} can never trip with objective {objective_percent:g} "
                f"(it needs an error ratio of {float(needed) * 100:.0f}%)")
    return None


def check_period(period_s: int, window_s: int, windows: tuple[BurnWindow, ...]) -> str | None:
    if period_s % window_s:
        return f"period {duration_text(period_s)} is not a whole number of {window_s} s windows"
    longest = max((w.long_s for w in windows), default=0)
    if longest > period_s:
        return (f"period {duration_text(period_s)} is shorter than the longest burn window "
                f"{duration_text(longest)}")
    return None

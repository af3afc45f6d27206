"""Unix cron (5 fields, what the spec says) → AWS cron (6 fields, what EventBridge
Scheduler takes). Pure; no AWS import.

Differences handled: AWS numbers days of the week 1-7 from Sunday (Unix: 0-6, 0 and 7 =
Sunday) — so days are written as names (MON-FRI), which both read the same way; AWS wants
`?` in one of day-of-month/day-of-week; AWS has a year field. Not expressible: a step (`/`)
in day-of-week, and day-of-month and day-of-week both restricted (Unix runs when *either*
matches, AWS refuses the combination)."""

from __future__ import annotations

DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAME_NUMBER = {name: number for number, name in enumerate(DAY_NAMES)}
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class CronNotExpressible(ValueError):
    """The Unix expression has no AWS cron equivalent."""


def _day(token: str) -> int:
    token = token.strip().upper()
    if token in _NAME_NUMBER:
        return _NAME_NUMBER[token]
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise CronNotExpressible(f"day of week {token!r} is not a day")


def _days(field: str) -> set[int] | None:
    """The set of days a Unix day-of-week field selects; None for every day."""
    if field in ("*", "?"):
        return None
    days: set[int] = set()
    for part in field.split(","):
        if "/" in part:
            raise CronNotExpressible(f"a step ('{part}') in day of week: AWS cron has no '/' there")
        if part == "*":
            return None
        if "-" in part:
            low, high = (_day(p) for p in part.split("-", 1))
            if part.split("-", 1)[1].strip() == "7":
                high = 7
            if high < low:
                raise CronNotExpressible(f"day-of-week range {part!r} runs backwards")
            days.update(d % 7 for d in range(low, high + 1))
        else:
            days.add(_day(part))
    return None if len(days) == 7 else days


def _day_names(days: set[int]) -> str:
    """Sorted days as names, consecutive runs as ranges: {1,2,3,4,5} → MON-FRI."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs)


def aws_cron(unix: str) -> str:
    """`cron(...)` for EventBridge Scheduler from a 5-field Unix expression."""
    expression = _MACROS.get(unix.strip().lower(), unix)
    fields = expression.split()
    if len(fields) != 5:
        raise CronNotExpressible(f"{unix!r} is not a 5-field cron expression")
    minute, hour, dom, month, dow = fields
    days = _days(dow)
    if days is None:
        dow_aws, dom_aws = "?", dom
    elif dom in ("*", "?"):
        dow_aws, dom_aws = _day_names(days), "?"
    else:
        raise CronNotExpressible("both day of month and day of week are restricted (Unix runs when either matches; AWS cron allows only one)")
    return f"cron({minute} {hour} {dom_aws} {month.upper()} {dow_aws} *)"

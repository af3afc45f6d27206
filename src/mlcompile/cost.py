"""Cost estimates of a plan from the catalog's on-demand list prices (catalog/prices.yaml).

What is estimated, and how (docs/cost.md says the same for readers):

- A pipeline step costs its machine's hourly price × its replicas × its timeout in hours: the
  timeout is the upper bound of a run.  A tuning step runs every trial to its timeout
  (trials × per trial); running trials in parallel changes when, not how much, is paid.  A step
  without a timeout has no upper bound, and neither has its pipeline.
- A pipeline run is the sum of its steps, every step counted (a step skipped by a gate only
  makes the run cheaper).
- An online endpoint costs its hourly serving price × replicas × 730 hours a month
  (8,760 hours a year / 12), from min to max replicas.
- A schedule runs its pipeline as often as its cron fires over a fixed reference year
  (2025-01-01 to 2026-01-01 in the schedule's time zone), divided by 12: the same answer on
  every machine and every day.  Its monthly cost is that × the pipeline's run upper bound.
- Sums are exact (Decimal) and rounded half-even to cents once, at the end.

Kubeflow runs on the team's own cluster: no list price, the resources are stated instead.  A
local run costs nothing.  A machine without a sourced price is "price unknown" — never a guess.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing the build needs no plan classes
    from mlcompile.plan.nodes import Machine, Pipeline, Plan, Resources, Step
    from mlcompile.targets.base import Pricing

COST_FILE = "cost.json"
COST_KIND = "mlcompile.cost_estimate"
COST_VERSION = "1"  # changes whenever the shape of cost.json does
HOURS_PER_MONTH = Decimal(730)
REFERENCE_YEAR = 2025
CAVEAT = (
    "Estimates from on-demand list prices in one region per platform (the catalog's prices.yaml), "
    "not a quote: discounts, spot, storage, network and per-request charges are left out."
)
SELF_MANAGED = "self-managed cluster: no list price"
NO_CHARGE = "runs on this machine: no charge"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class HourlyPrice:
    """The hourly price of one machine for one use; ``usd`` None when there is none, and why."""

    usd: Decimal | None
    note: str | None
    sources: tuple[tuple[str, str, str | None], ...] = ()  # (source page, as of, via)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _number(amount: Decimal | None) -> float | int | None:
    """A JSON number: whole amounts as integers, the rest as the shortest float."""
    if amount is None:
        return None
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def money(amount: Decimal | float | None) -> str:
    """$1,234.56 — always cents."""
    if amount is None:
        return "price unknown"
    return f"${cents(Decimal(str(amount))):,.2f}"


# ------------------------------------------------------------------------------ prices


def hourly_price(platform: str, machine: Machine | None, use: str) -> HourlyPrice:
    """What one ``machine`` costs an hour on ``platform`` for ``use`` (training or serving).

    On Vertex AI a machine's GPUs are billed on top of the machine: machine + accelerator × count.
    """
    pricing = _pricing(platform)
    if pricing.model == "no_charge":
        return HourlyPrice(Decimal(0), NO_CHARGE)
    if pricing.model == "self_managed":
        return HourlyPrice(None, SELF_MANAGED)
    table = _price_table(platform)
    if table is None:
        return HourlyPrice(None, f"no price list for platform {platform}")
    if machine is None or not machine.name:
        return HourlyPrice(None, "no machine type")
    parts = [(machine.name, table.machines.get(machine.name, {}).get(use), 1)]
    if pricing.accelerators_billed_apart and machine.accelerator_platform_name and machine.accelerator_count:
        gpu = machine.accelerator_platform_name
        parts.append((gpu, table.accelerators.get(gpu, {}).get(use), machine.accelerator_count))
    missing = [name for name, found, _ in parts if found is None]
    if missing:
        return HourlyPrice(None, f"price unknown: no {use} price for {' or '.join(missing)} in {table.region}")
    total = sum((found.usd_per_hour * count for _, found, count in parts), Decimal(0))
    sources = [(found.source, found.as_of, found.via) for _, found, _ in parts]
    return HourlyPrice(total, None, tuple(dict.fromkeys(sources)))


def price_region(platform: str) -> str | None:
    table = _price_table(platform)
    return None if table is None else str(table.region)


def charges(platform: str) -> bool:
    """Whether running on the platform costs anything (not so on this machine)."""
    return _pricing(platform).model != "no_charge"


def _pricing(platform: str) -> Pricing:
    """How the platform's machines are priced (`Platform.pricing`; unknown when not installed)."""
    from mlcompile.targets.base import Pricing
    from mlcompile.targets.registry import platform_named

    found = platform_named(platform)
    return found.pricing if found is not None else Pricing()


def _price_table(platform: str) -> Any:
    """The platform's list prices (`Platform.price_table()`), None without any."""
    from mlcompile.targets.registry import platform_named

    found = platform_named(platform)
    return found.price_table() if found is not None else None


# ------------------------------------------------------------------------------ cron


@functools.cache
def runs_per_year(cron: str, timezone: str) -> int:
    """How often ``cron`` fires in the reference year, counted in ``timezone``.

    A day without a change of UTC offset fires (minutes × hours) times when cronsim matches the
    day; the two or so days a year with a daylight-saving change are walked fire by fire, so a
    time skipped in spring counts once (cronsim fires it in the next hour) and a repeated one
    once.  Walking every fire of the year gives the same count, only much slower ("*/15" fires
    35,040 times)."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    zone = ZoneInfo(timezone)
    day, end = date(REFERENCE_YEAR, 1, 1), date(REFERENCE_YEAR + 1, 1, 1)
    sim = CronSim(cron, datetime(REFERENCE_YEAR, 1, 1, tzinfo=zone))
    per_day = len(sim.minutes) * len(sim.hours)
    count = 0
    while day < end:
        following = day + timedelta(days=1)
        if day.month in sim.months and sim.match_day(day):
            offsets = {datetime(d.year, d.month, d.day, h, m, tzinfo=zone).utcoffset()
                       for d, h, m in ((day, 0, 0), (day, 23, 59), (following, 0, 0))}  # fmt: skip
            if len(offsets) == 1:
                count += per_day
            else:
                start = datetime(day.year, day.month, day.day, tzinfo=zone) - timedelta(minutes=1)
                stop = datetime(following.year, following.month, following.day, tzinfo=zone)
                for fire in CronSim(cron, start):  # yields fires after start
                    if fire >= stop:
                        break
                    count += 1
        day = following
    return count


def runs_per_month(cron: str, timezone: str) -> Decimal:
    """Fires in the reference year / 12, exact (365 daily fires: 365/12)."""
    return Decimal(runs_per_year(cron, timezone)) / 12


# ------------------------------------------------------------------------------ estimate


def _resources(resources: Resources) -> dict[str, Any]:
    machine, accelerator = resources.machine, resources.accelerator
    return {
        "machine": machine.name if machine is not None else None,
        "accelerator": accelerator.type if accelerator else None,
        "accelerator_count": accelerator.count if accelerator else 0,
        "cpu": resources.cpu,
        "memory": resources.memory,
    }


def _price_fields(price: HourlyPrice) -> dict[str, Any]:
    return {
        "price_per_hour": _number(price.usd),
        "price_note": price.note,
        "price_sources": [{"source": source, "as_of": as_of, **({"via": via} if via else {})} for source, as_of, via in price.sources],
    }


def _step(plan: Plan, step: Step) -> tuple[dict[str, Any], Decimal | None, str | None]:
    """A step's entry, its run upper bound, and why it has none."""
    r = step.resources
    price = hourly_price(plan.platform, r.machine, "training")
    trials = plan.tuning.max_trials if step.kind == "tune" and plan.tuning is not None else 1
    hours = None if r.timeout_seconds is None else Decimal(r.timeout_seconds) / 3600
    why = None
    if price.usd == 0:
        bound: Decimal | None = Decimal(0)
    elif price.usd is None:
        bound, why = None, price.note
    elif hours is None:
        bound, why = None, "no timeout: no upper bound"
    else:
        bound = price.usd * r.replicas * hours * trials
    entry = {
        "step": step.name,
        "kind": step.kind,
        **_resources(r),
        "count": r.replicas,
        "trials": trials,
        "timeout_hours": _number(hours),
        **_price_fields(price),
        "run_upper_bound": _number(None if bound is None else cents(bound)),
    }
    return entry, bound, why


def _pipeline(plan: Plan, pipeline: Pipeline) -> tuple[dict[str, Any], Decimal | None]:
    steps, total, missing = [], Decimal(0), []
    for step in pipeline.steps:
        entry, bound, why = _step(plan, step)
        steps.append(entry)
        if bound is None:
            missing.append(f"{step.name}: {why}")
        else:
            total += bound
    bound_total = None if missing else total
    return (
        {"pipeline": pipeline.name, "run_upper_bound": _number(None if bound_total is None else cents(bound_total)),
         "unbounded": missing, "steps": steps},
        bound_total,
    )  # fmt: skip


def _deployments(platform: str, strategy: str | None) -> int:
    """Deployments an online endpoint keeps running, each with its own replicas and billed
    (`Platform.billed_deployments`: on Azure ML a canary or blue/green rollout is two)."""
    from mlcompile.targets.registry import platform_named

    found = platform_named(platform)
    return found.billed_deployments(strategy) if found is not None else 1


def estimate(plan: Plan) -> dict[str, Any]:
    """The cost estimate of a plan: what cost.json holds."""
    pipelines, bounds = [], {}
    for pipeline in plan.pipelines():
        entry, bound = _pipeline(plan, pipeline)
        pipelines.append(entry)
        bounds[pipeline.name] = bound
    endpoints = []
    if plan.online is not None:
        e = plan.online
        price = hourly_price(plan.platform, e.resources.machine, "serving")
        deployments = _deployments(plan.platform, e.strategy)
        low = None if price.usd is None else cents(price.usd * e.min_replicas * deployments * HOURS_PER_MONTH)
        high = None if price.usd is None else cents(price.usd * e.max_replicas * deployments * HOURS_PER_MONTH)
        endpoints.append({
            "endpoint": e.name, **_resources(e.resources), "min_replicas": e.min_replicas, "max_replicas": e.max_replicas,
            **({"deployments": deployments} if deployments > 1 else {}),
            **_price_fields(price), "per_month_min": _number(low), "per_month_max": _number(high),
        })  # fmt: skip
    schedules = []
    for schedule in plan.schedules:
        per_year = runs_per_year(schedule.cron, schedule.timezone)
        bound = bounds.get(schedule.pipeline)
        monthly = None if bound is None else cents(bound * per_year / 12)
        schedules.append({
            "schedule": schedule.name, "pipeline": schedule.pipeline, "cron": schedule.cron, "timezone": schedule.timezone,
            "runs_per_year": per_year, "runs_per_month": _number(cents(Decimal(per_year) / 12)),
            "per_month_upper_bound": _number(monthly),
        })  # fmt: skip
    settings = plan.platform_settings or {}
    return {
        "cost_version": COST_VERSION,
        "currency": "USD",
        "platform": plan.platform,
        "price_region": price_region(plan.platform),
        "profile_region": settings.get("region"),
        "caveat": CAVEAT,
        "conventions": {
            "training_run": "each step's hourly price × replicas × timeout hours (× trials when tuning); the timeout is the upper bound",
            "endpoint_hours_per_month": int(HOURS_PER_MONTH),
            "schedule_runs_per_month": f"cron fires from {REFERENCE_YEAR}-01-01 to {REFERENCE_YEAR + 1}-01-01 in the schedule's time zone, / 12",
            "rounding": "exact sums, rounded half-even to cents",
        },
        "pipelines": pipelines,
        "endpoints": endpoints,
        "schedules": schedules,
    }


def cost_file(plan: Plan) -> Any:
    """cost.json of a build."""
    from mlcompile.targets.base import OutputFile, json_bytes

    return OutputFile(COST_FILE, COST_KIND, json_bytes(estimate(plan)))


# ------------------------------------------------------------------------------ words


def _why_none(platform: str, reasons: list[str]) -> str:
    """Why an estimate has no figure, in words that name what is missing: the machine and use
    without a sourced price ("price unknown (no serving price for e2-standard-4 in
    us-central1)"), a step without a timeout, or a self-managed cluster."""
    if _pricing(platform).model == "self_managed":
        return "no list price (self-managed cluster)"
    unknown = "price unknown: "
    unpriced = sorted({r.removeprefix(unknown) for r in reasons if r.startswith(unknown)})
    unbounded = any(r.startswith("no timeout") for r in reasons)
    words = [f"price unknown ({'; '.join(unpriced)})"] if unpriced else []
    if unbounded:
        words.append("no upper bound (a step has no timeout)")
    return "; ".join(words) or "price unknown"


def pipeline_text(entry: dict[str, Any], platform: str) -> str:
    if _pricing(platform).model == "no_charge":
        return "no charge"
    if entry.get("run_upper_bound") is not None:
        return f"≤ {money(entry['run_upper_bound'])}"
    return _why_none(platform, [u.split(": ", 1)[-1] for u in entry.get("unbounded", ())])


def endpoint_text(entry: dict[str, Any], platform: str) -> str:
    if _pricing(platform).model == "no_charge":
        return "no charge"
    low, high = entry.get("per_month_min"), entry.get("per_month_max")
    if low is None or high is None:
        return _why_none(platform, [entry.get("price_note") or ""])
    return f"{money(low)}/month" if low == high else f"{money(low)}–{money(high)}/month"


def schedule_text(entry: dict[str, Any], platform: str, pipeline: dict[str, Any] | None = None) -> str:
    runs = f"{entry['runs_per_month']:g} runs/month"
    if _pricing(platform).model == "no_charge":
        return f"{runs}, no charge"
    if entry.get("per_month_upper_bound") is None:
        return f"{runs}, {pipeline_text(pipeline or {}, platform)}"
    return f"{runs}, ≤ {money(entry['per_month_upper_bound'])}/month"


def items(data: dict[str, Any]) -> dict[str, str]:
    """cost.json as reviewable items: "pipeline NAME" / "endpoint NAME" / "schedule NAME" -> the
    estimate in words ("≤ $12.00" a run, "$80.30–$240.90/month", "30.42 runs/month, ≤ …")."""
    platform = data.get("platform", "")
    pipelines = {p["pipeline"]: p for p in data.get("pipelines", ())}
    found: dict[str, str] = {}
    for name, entry in pipelines.items():
        found[f"pipeline {name}"] = f"run {pipeline_text(entry, platform)}"
    for entry in data.get("endpoints", ()):
        found[f"endpoint {entry['endpoint']}"] = endpoint_text(entry, platform)
    for entry in data.get("schedules", ()):
        found[f"schedule {entry['schedule']}"] = schedule_text(entry, platform, pipelines.get(entry["pipeline"]))
    return found


# ------------------------------------------------------------------------------ deltas

TRAINING_RUN = "total per training run"
PER_MONTH = "total per month"
MONTH_CHANGE = "change per month"
Span = tuple[Decimal | None, Decimal | None]  # low, high; None where there is no price


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _spans(data: dict[str, Any]) -> dict[str, Span]:
    """Each item of cost.json as amounts, keyed like :func:`items`, plus the two totals a
    reviewer weighs: a training run (the first pipeline, training) and a month (endpoints at
    min..max replicas plus every schedule's runs)."""
    found: dict[str, Span] = {}
    for entry in data.get("pipelines", ()):
        bound = _decimal(entry.get("run_upper_bound"))
        found[f"pipeline {entry['pipeline']}"] = (bound, bound)
    monthly: list[Span] = []
    for entry in data.get("endpoints", ()):
        span = (_decimal(entry.get("per_month_min")), _decimal(entry.get("per_month_max")))
        found[f"endpoint {entry['endpoint']}"] = span
        monthly.append(span)
    for entry in data.get("schedules", ()):
        bound = _decimal(entry.get("per_month_upper_bound"))
        found[f"schedule {entry['schedule']}"] = (bound, bound)
        monthly.append((bound, bound))
    pipelines = data.get("pipelines", ())
    if pipelines:
        found[TRAINING_RUN] = found[f"pipeline {pipelines[0]['pipeline']}"]
    if monthly:
        lows, highs = [low for low, _ in monthly], [high for _, high in monthly]
        found[PER_MONTH] = (None if None in lows else sum(lows, Decimal(0)), None if None in highs else sum(highs, Decimal(0)))  # type: ignore[arg-type]
    return found


def _signed(amount: Decimal) -> str:
    amount = cents(amount)
    return ("+" if amount > 0 else "−" if amount < 0 else "±") + money(abs(amount))


def _delta(old: Span, new: Span, per: str) -> str | None:
    """new − old in dollars; None when either side has no price or no upper bound (the
    estimates in words say which)."""
    if None in old or None in new:
        return None
    low, high = new[0] - old[0], new[1] - old[1]  # type: ignore[operator]
    text = _signed(low) if cents(low) == cents(high) else f"{_signed(low)} to {_signed(high)}"
    return f"{text} a run" if per == "run" else f"{text}/month"


def _total_text(span: Span | None, per: str) -> str | None:
    if span is None:
        return None
    low, high = span
    if low is None or high is None:
        return "no total (an item has no price or no upper bound)"
    text = money(low) if cents(low) == cents(high) else f"{money(low)}–{money(high)}"
    return f"{text} a run" if per == "run" else f"{text}/month"


def _month_change(rows: list[tuple[str, str | None, str | None, str | None]], before: dict[str, Span], after: dict[str, Span]) -> str | None:
    """The difference a change makes to a month when the month itself has no total (an item
    without a price or an upper bound): the sum of the changed monthly items' differences. Exact,
    because an item this change leaves alone costs the same on both sides; None when a changed
    item has no difference in dollars, or the month has totals to compare."""
    if None not in before.get(PER_MONTH, (None,)) and None not in after.get(PER_MONTH, (None,)):
        return None
    monthly = [row for row in rows if row[0].startswith(("endpoint ", "schedule "))]
    if not monthly or not all(delta for *_, delta in monthly):
        return None
    nothing: Span = (Decimal(0), Decimal(0))
    low = sum((after.get(item, nothing)[0] - before.get(item, nothing)[0] for item, *_ in monthly), Decimal(0))  # type: ignore[operator]
    high = sum((after.get(item, nothing)[1] - before.get(item, nothing)[1] for item, *_ in monthly), Decimal(0))  # type: ignore[operator]
    return _delta(nothing, (low, high), "month")


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str | None, str | None, str | None]]:
    """What changed between two cost.json: (item, old in words, new in words, the difference in
    dollars), then, when anything did, the difference per training run and per month (a month
    without a total on either side gets its "change per month" instead: no words, a difference)."""
    before_words, after_words = items(old), items(new)
    before, after = _spans(old), _spans(new)
    nothing: Span = (Decimal(0), Decimal(0))
    rows = []
    for item in sorted(set(before_words) | set(after_words)):
        if before_words.get(item) == after_words.get(item):
            continue
        per = "run" if item.startswith("pipeline ") else "month"
        rows.append((item, before_words.get(item), after_words.get(item), _delta(before.get(item, nothing), after.get(item, nothing), per)))
    if rows and charges(new.get("platform") or old.get("platform") or ""):
        month_change = _month_change(rows, before, after)
        for total, per in ((TRAINING_RUN, "run"), (PER_MONTH, "month")):
            old_total, new_total = _total_text(before.get(total), per), _total_text(after.get(total), per)
            if old_total != new_total:
                rows.append((total, old_total, new_total, _delta(before.get(total, nothing), after.get(total, nothing), per)))
        if month_change:
            rows.append((MONTH_CHANGE, None, None, month_change))
    return rows


def explain_lines(plan: Plan) -> list[str]:
    """The "Cost estimate" section of `mlcompile explain`."""
    data = estimate(plan)
    platform = plan.platform
    where = ""
    if data["price_region"]:
        where = f" (list prices for {data['price_region']}"
        if data["profile_region"] and data["profile_region"] != data["price_region"]:
            where += f"; this profile runs in {data['profile_region']}"
        where += ")"
    lines = [f"Cost estimate{where}"]
    pipelines = {p["pipeline"]: p for p in data["pipelines"]}
    for entry in data["pipelines"]:
        lines.append(f"  {entry['pipeline']}: per run: {pipeline_text(entry, platform)}")
        for step in entry["steps"]:
            if step["price_per_hour"] is not None and step["run_upper_bound"] is None:
                lines.append(f"    {step['step']} has no timeout: the run has no upper bound")
    for entry in data["endpoints"]:
        sizing = (
            f"{entry['min_replicas']}..{entry['max_replicas']} replicas"
            + (f" × {entry['deployments']} deployments" if entry.get("deployments", 1) > 1 else "")
            + f" × {int(HOURS_PER_MONTH)} h"
        )
        text = endpoint_text(entry, platform)
        lines.append(f"  endpoint {entry['endpoint']}: " + (f"{text} ({sizing})" if entry["price_per_hour"] is not None else f"{text}; {sizing}"))
    for entry in data["schedules"]:
        lines.append(f"  schedule {entry['schedule']}: {schedule_text(entry, platform, pipelines.get(entry['pipeline']))}")
    note = _pricing(platform).note
    if note:
        lines.append(f"  {note}")
    lines.append(f"  {CAVEAT}")
    return lines

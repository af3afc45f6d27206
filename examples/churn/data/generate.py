"""Generate the churn example's sample data: activity.csv and labels.csv.

Synthetic but shaped like the real thing: the nightly activity job writes one snapshot row
per customer (trailing-30-day aggregates), and the churn labeller writes one row per customer
at the moment a prediction is made (label_ts) saying whether the customer cancelled within the
following 30 days. The sample keeps a thinned subset of snapshots (every 1-4 weeks per
customer) so the files stay small.

Churn risk depends on order frequency, support tickets, plan and tenure, plus noise, and
customers who are about to churn order less and complain more in the weeks before label_ts.
Snapshots taken *after* label_ts show the outcome (a churned customer stops ordering): a
join that ignores time leaks the label, a point-in-time join does not.

Standard library only and deterministic: running it again reproduces the files byte for byte.

    python data/generate.py
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20240101
CUSTOMERS = 900
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
LAST_SNAPSHOT_DAY = 120  # snapshots run 2024-01-01 .. 2024-04-30
HERE = Path(__file__).resolve().parent

PLANS = (("basic", 0.50), ("plus", 0.35), ("pro", 0.15))
PLAN_ORDERS = {"basic": 2.0, "plus": 3.5, "pro": 6.0}  # orders per 30 days, median
PLAN_ORDER_VALUE = {"basic": 32.0, "plus": 55.0, "pro": 105.0}  # EUR, median
PLAN_RISK = {"basic": 0.7, "plus": 0.0, "pro": -0.9}  # log-odds


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here, and deterministic."""
    if mean <= 0:
        return 0
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def iso(day: float) -> str:
    return (START + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")


def customer(rng: random.Random, index: int) -> tuple[list[list[object]], list[object]]:
    customer_id = f"C{index:06d}"
    plan = rng.choices([p for p, _ in PLANS], weights=[w for _, w in PLANS])[0]
    tenure0 = min(2500, 20 + int(rng.expovariate(1 / 420)))
    order_rate = PLAN_ORDERS[plan] * rng.lognormvariate(0, 0.55)
    order_value = PLAN_ORDER_VALUE[plan] * rng.lognormvariate(0, 0.25)
    ticket_rate = 0.35 * rng.lognormvariate(0, 0.7)

    label_day = rng.randint(45, 105)  # the prediction moment, 2024-02-15 .. 2024-04-15
    tenure_at_label = tenure0 + label_day
    risk = (
        -1.9
        - 0.55 * (order_rate - 3.0)
        + 1.6 * ticket_rate
        + PLAN_RISK[plan]
        - 0.8 * math.log(tenure_at_label / 365)
        + rng.gauss(0, 0.5)
    )
    churned = rng.random() < 1 / (1 + math.exp(-risk))
    churn_day = label_day + rng.randint(1, 30) if churned else None
    # churners disengage in the weeks before the prediction moment: fewer orders, more tickets
    fade_start = label_day - rng.randint(20, 45)
    fade = rng.uniform(0.3, 0.7)

    rows = []
    day = rng.randint(0, 14)
    while day <= LAST_SNAPSHOT_DAY:
        rate, tickets = order_rate, ticket_rate
        if churned and day >= fade_start:
            rate *= fade
            tickets *= 1.8
        if churn_day is not None and day >= churn_day:  # cancelled: the trailing window empties
            still_active = max(0.0, 1 - (day - churn_day) / 30)
            rate *= still_active * 0.5
            tickets *= still_active
        orders = poisson(rng, rate)
        spend = sum(order_value * rng.lognormvariate(0, 0.35) for _ in range(orders))
        rows.append(
            [
                customer_id,
                iso(day + 0.25),  # the nightly job finishes around 06:00 UTC
                plan,
                tenure0 + day,
                orders,
                f"{spend:.2f}",
                poisson(rng, tickets),
            ]
        )
        day += rng.randint(12, 30)
    label = [customer_id, iso(label_day), int(churned)]
    return rows, label


def main() -> None:
    rng = random.Random(SEED)
    activity: list[list[object]] = []
    labels: list[list[object]] = []
    for index in range(1, CUSTOMERS + 1):
        rows, label = customer(rng, index)
        activity += rows
        labels.append(label)
    activity.sort(key=lambda row: (row[1], row[0]))
    labels.sort(key=lambda row: (row[1], row[0]))
    write(HERE / "activity.csv", ["customer_id", "event_ts", "plan", "tenure_days", "orders_30d", "spend_30d", "support_tickets_30d"], activity)
    write(HERE / "labels.csv", ["customer_id", "label_ts", "churned"], labels)


def write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    main()

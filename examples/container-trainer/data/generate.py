"""Writes the sample data of the card-fraud example: cards.csv (daily activity snapshots per
card) and labels.csv (one row per card and review moment: was a charge within the next 7 days
confirmed fraud). Standard library only; byte-for-byte reproducible.

    python examples/container-trainer/data/generate.py
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
CARDS = 300
START = datetime(2024, 3, 1, 5, 0, tzinfo=timezone.utc)
SNAPSHOTS = 8  # weekly
TIERS = ("classic", "gold", "platinum")


def main() -> None:
    rng = random.Random(7)
    activity, labels = [], []
    for index in range(CARDS):
        card = f"K{index:05d}"
        tier = rng.choices(TIERS, weights=(6, 3, 1))[0]
        age = rng.randint(30, 3000)
        risky = rng.random() < 0.25  # compromised at some point of the sample
        for week in range(SNAPSHOTS):
            ts = START + timedelta(days=7 * week)
            compromised = risky and week >= SNAPSHOTS // 2
            txns = max(0, round(rng.gauss(6 + (9 if compromised else 0), 3)))
            amount = round(max(0.0, rng.gauss(60 * (1 + TIERS.index(tier)), 25)) * max(txns, 1) * (2.5 if compromised else 1.0), 2)
            merchants = min(txns, max(0, round(rng.gauss(3 + (6 if compromised else 0), 2))))
            foreign = round(min(1.0, max(0.0, rng.gauss(0.05 + (0.45 if compromised else 0), 0.1))), 3)
            chargebacks = rng.choices((0, 1, 2), weights=(90, 8, 2))[0] + (1 if compromised and rng.random() < 0.5 else 0)
            activity.append([card, ts.isoformat().replace("+00:00", "Z"), tier, age + 7 * week, txns, amount, merchants, foreign, chargebacks])
            if week >= 1 and rng.random() < 0.6:
                odds = -3.2 + (3.6 if compromised else 0) + 1.5 * foreign + 0.4 * chargebacks + (0.5 if age < 120 else 0)
                fraud = int(rng.random() < 1 / (1 + math.exp(-odds)))
                labels.append([card, (ts + timedelta(hours=6)).isoformat().replace("+00:00", "Z"), fraud])
    with open(HERE / "cards.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["card_id", "event_ts", "card_tier", "account_age_days", "txn_count_7d", "amount_7d", "distinct_merchants_7d", "foreign_ratio_7d", "chargebacks_90d"])
        writer.writerows(activity)
    with open(HERE / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["card_id", "label_ts", "is_fraud"])
        writer.writerows(sorted(labels, key=lambda r: (r[1], r[0])))


if __name__ == "__main__":
    main()

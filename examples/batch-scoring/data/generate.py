"""Generate the batch-scoring example's sample data: invoices, account snapshots, outcomes.

A year of accounts-receivable history for a few hundred B2B customer accounts is simulated;
the files keep the second half (the first half only warms up the payment-history features):

* invoices.csv   one row per invoice at issue time (invoice_id, account_id, issued_ts, ...).
                 Includes the still-open invoices at the end: those are what the nightly
                 batch job scores.
* accounts.csv   fortnightly account snapshots from the finance warehouse. The payment-history
                 columns are computed from invoices that were settled *before* the snapshot,
                 exactly as the warehouse job does, so they never look into the future.
* outcomes.csv   one row per settled invoice: paid_late = 1 when it was paid more than 7 days
                 after its due date. Keyed by the issue time (the moment a score is made).

Lateness depends on the account's (hidden) payment discipline, its industry and credit
utilisation, the invoice amount, payment terms and delivery channel, plus noise.

Standard library only and deterministic: running it again reproduces the files byte for byte.

    python data/generate.py
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 4242
ACCOUNTS = 220
DAYS = 364
KEEP_FROM = 182  # day 182 = 2024-07-01: the files start here
SNAPSHOT_EVERY = 14
GRACE_DAYS = 7
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
HERE = Path(__file__).resolve().parent

INDUSTRIES = {  # industry: (share, lateness log-odds)
    "construction": (0.18, 0.6),
    "retail": (0.20, 0.25),
    "logistics": (0.15, 0.2),
    "manufacturing": (0.22, 0.0),
    "healthcare": (0.10, -0.2),
    "software": (0.15, -0.45),
}
TERMS = {14: -0.2, 30: 0.0, 45: 0.25, 60: 0.45}  # payment terms (days): lateness log-odds
CHANNELS = {"e-invoice": -0.2, "portal": 0.0, "paper": 0.45}


def iso(day: float) -> str:
    return (START + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def main() -> None:
    rng = random.Random(SEED)
    accounts = []
    for index in range(1, ACCOUNTS + 1):
        industry = rng.choices(list(INDUSTRIES), weights=[s for s, _ in INDUSTRIES.values()])[0]
        accounts.append(
            {
                "id": f"A{index:05d}",
                "industry": industry,
                "employees": int(rng.lognormvariate(math.log(80), 1.2)) + 3,
                "discipline": rng.gauss(0, 0.9) + INDUSTRIES[industry][1],
                "utilisation": min(0.98, max(0.02, rng.betavariate(2, 3))),
                "invoices_per_month": rng.uniform(0.6, 2.6),
                "typical_amount": rng.lognormvariate(math.log(2500), 0.8),
                "terms": rng.choice(list(TERMS)),
                "channel": rng.choices(list(CHANNELS), weights=[5, 3, 2])[0],
            }
        )

    invoices = []  # every invoice, with its simulated settlement
    serial = 0
    for account in accounts:
        day = rng.uniform(0, 20)
        while day < DAYS:
            serial += 1
            amount = account["typical_amount"] * rng.lognormvariate(0, 0.6)
            terms = account["terms"] if rng.random() < 0.85 else rng.choice(list(TERMS))
            risk = (
                -1.5
                + 2.2 * account["discipline"]
                + 0.5 * math.log(amount / 2500)
                + 1.5 * TERMS[terms]
                + 1.5 * CHANNELS[account["channel"]]
                + 2.5 * (account["utilisation"] - 0.4)
                + rng.gauss(0, 0.3)
            )
            late = rng.random() < sigmoid(risk)
            issued = math.floor(day) + rng.choice((0.3, 0.4, 0.6))  # business hours, UTC
            due = math.floor(issued) + terms
            paid = due + (rng.randint(GRACE_DAYS + 1, 75) if late else rng.randint(-12, GRACE_DAYS)) + 0.5
            invoices.append(
                {
                    "id": f"INV-{serial:07d}",
                    "account": account,
                    "issued": issued,
                    "due": due,
                    "paid": paid,
                    "amount": amount,
                    "terms": terms,
                    "lines": 1 + int(rng.expovariate(1 / 3)),
                    "late": late,
                }
            )
            day += rng.expovariate(account["invoices_per_month"] / 30)
            # utilisation drifts slowly: some accounts stretch their credit line over time
            account["utilisation"] = min(0.98, max(0.02, account["utilisation"] + rng.gauss(0.002, 0.02)))

    by_account: dict[str, list[dict]] = {}
    for invoice in invoices:
        by_account.setdefault(invoice["account"]["id"], []).append(invoice)

    snapshot_rows = []
    for snapshot_day in range(KEEP_FROM - 7, DAYS, SNAPSHOT_EVERY):
        at = snapshot_day + 0.125  # the warehouse job lands around 03:00 UTC
        for account in accounts:
            history = by_account[account["id"]]
            settled = [i for i in history if i["paid"] <= at and i["due"] >= at - 180]
            open_invoices = [i for i in history if i["issued"] <= at < i["paid"]]
            dunned = [i for i in history if at - 90 <= i["due"] + 14 <= at and i["paid"] > i["due"] + 14]
            late_ratio = sum(i["paid"] - i["due"] > GRACE_DAYS for i in settled) / len(settled) if settled else 0.0
            days_late = sum(max(0.0, i["paid"] - i["due"]) for i in settled) / len(settled) if settled else 0.0
            utilisation = min(1.0, max(0.0, account["utilisation"] + rng.gauss(0, 0.03)))
            snapshot_rows.append(
                [account["id"], iso(at), account["industry"], account["employees"], len(open_invoices),
                 f"{late_ratio:.3f}", f"{days_late:.1f}", f"{utilisation:.3f}", len(dunned)]
            )  # fmt: skip

    invoice_rows, outcome_rows = [], []
    for invoice in sorted(invoices, key=lambda i: (i["issued"], i["id"])):
        if invoice["issued"] < KEEP_FROM:
            continue
        account = invoice["account"]
        invoice_rows.append(
            [invoice["id"], account["id"], iso(invoice["issued"]), f"{invoice['amount']:.2f}",
             invoice["terms"], account["channel"], invoice["lines"]]
        )  # fmt: skip
        if invoice["paid"] <= DAYS and invoice["due"] + GRACE_DAYS < DAYS:  # the outcome is known
            outcome_rows.append([invoice["id"], account["id"], iso(invoice["issued"]), iso(invoice["due"]), int(invoice["late"])])

    write("invoices.csv", ["invoice_id", "account_id", "issued_ts", "amount_eur", "payment_terms_days", "channel", "line_items"], invoice_rows)
    write(
        "accounts.csv",
        ["account_id", "snapshot_ts", "industry", "employees", "open_invoices", "late_ratio_180d",
         "avg_days_late_180d", "credit_utilization", "dunning_letters_90d"],
        snapshot_rows,
    )  # fmt: skip
    write("outcomes.csv", ["invoice_id", "account_id", "issued_ts", "due_ts", "paid_late"], outcome_rows)


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    main()

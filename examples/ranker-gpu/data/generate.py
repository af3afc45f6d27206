"""Generate the ranker example's tiny sample data (a few hundred KB in all).

Four files, shaped like the production logs:

* users.csv        daily user-engagement snapshots (user_id, event_ts, ...)
* items.csv        daily item statistics (item_id, event_ts, ...)
* searches.csv     one row per search (query_id, user_id, search_ts, ...)
* impressions.csv  the ranked results shown for each search, with a graded relevance label:
                   0 = ignored, 1 = clicked, 2 = added to cart, 3 = purchased

Relevance depends on the item's quality and popularity, how well its category matches the
query, the price the user is used to, plus noise: enough signal for a ranker to learn, and
for the pipeline to be exercised end to end on one machine.

Standard library only and deterministic: running it again reproduces the files byte for byte.

    python data/generate.py
"""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 7
USERS = 120
ITEMS = 200
SEARCHES = 300
RESULTS_PER_SEARCH = 8
DAYS = 28
START = datetime(2024, 5, 1, tzinfo=timezone.utc)
HERE = Path(__file__).resolve().parent

CATEGORIES = ("audio", "cameras", "gaming", "home", "kitchen", "laptops", "phones", "wearables")
DEVICES = (("mobile", 0.6), ("desktop", 0.3), ("tablet", 0.1))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def main() -> None:
    rng = random.Random(SEED)

    users = []
    for index in range(1, USERS + 1):
        users.append(
            {
                "id": f"u{index:05d}",
                "activity": rng.lognormvariate(0, 0.6),
                "budget": rng.lognormvariate(math.log(120), 0.7),  # typical basket price, EUR
                "device": rng.choices([d for d, _ in DEVICES], weights=[w for _, w in DEVICES])[0],
                "age": 30 + int(rng.expovariate(1 / 500)),
            }
        )
    items = []
    for index in range(1, ITEMS + 1):
        items.append(
            {
                "id": f"i{index:05d}",
                "category": rng.choice(CATEGORIES),
                "price": round(rng.lognormvariate(math.log(110), 0.9), 2),
                "quality": rng.gauss(0, 1),
                "rating": None,
            }
        )
        items[-1]["rating"] = min(5.0, max(1.0, 3.9 + 0.5 * items[-1]["quality"] + rng.gauss(0, 0.3)))

    user_rows, item_rows = [], []
    for day in range(0, DAYS, 7):  # weekly snapshots keep the sample small
        at = iso(START + timedelta(days=day, hours=5))
        for user in users:
            sessions = max(0, round(rng.gauss(6 * user["activity"], 2)))
            user_rows.append(
                [user["id"], at, sessions, max(0, round(sessions * rng.uniform(0.8, 2.5))),
                 max(0, round(rng.gauss(1.2 * user["activity"], 0.8))), user["age"] + day, user["device"]]
            )  # fmt: skip
        for item in items:
            ctr = sigmoid(-2.6 + 0.6 * item["quality"] + rng.gauss(0, 0.25))
            item_rows.append(
                [item["id"], at, f"{item['price']:.2f}", f"{ctr:.4f}",
                 f"{ctr * sigmoid(-1 + 0.5 * item['quality']):.4f}", f"{item['rating']:.2f}", item["category"]]
            )  # fmt: skip

    search_rows, impression_rows = [], []
    for index in range(1, SEARCHES + 1):
        user = rng.choice(users)
        intent = rng.choice(CATEGORIES)
        at = START + timedelta(days=rng.randint(7, DAYS - 1), seconds=rng.randint(0, 86399))
        query_id = f"q{index:06d}"
        tokens = rng.randint(1, 6)
        search_rows.append([query_id, user["id"], iso(at), tokens, intent, user["device"]])
        on_topic = [i for i in items if i["category"] == intent]
        shown = rng.sample(on_topic, min(5, len(on_topic))) + rng.sample(items, RESULTS_PER_SEARCH)
        shown = list({i["id"]: i for i in shown}.values())[:RESULTS_PER_SEARCH]
        rng.shuffle(shown)
        for position, item in enumerate(shown, start=1):
            score = (
                -0.5
                + 0.9 * item["quality"]
                + (1.4 if item["category"] == intent else -0.8)
                - 0.5 * abs(math.log(item["price"] / user["budget"]))
                - 0.12 * position
                + rng.gauss(0, 0.7)
            )
            relevance = 0
            for threshold in (0.0, 1.3, 2.4):
                if score > threshold:
                    relevance += 1
            impression_rows.append([query_id, user["id"], item["id"], iso(at + timedelta(seconds=2)), position, relevance])

    write("users.csv", ["user_id", "event_ts", "sessions_7d", "searches_7d", "purchases_30d", "account_age_days", "device"], user_rows)
    write("items.csv", ["item_id", "event_ts", "price_eur", "ctr_7d", "add_to_cart_rate_7d", "rating_avg", "category"], item_rows)
    search_rows.sort(key=lambda row: (row[2], row[0]))
    write("searches.csv", ["query_id", "user_id", "search_ts", "query_tokens", "query_category", "query_device"], search_rows)
    impression_rows.sort(key=lambda row: (row[3], row[0], row[4]))
    write("impressions.csv", ["query_id", "user_id", "item_id", "impression_ts", "position", "relevance"], impression_rows)


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    main()

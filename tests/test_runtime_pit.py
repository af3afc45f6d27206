"""Point-in-time correctness of extract-features, on data crafted so that a naive join leaks.

Every entity's feature source has a snapshot *after* its label timestamp whose value is the
label itself (what happens in real data: after a customer churns, their activity shows it).
A naive "latest row per entity" join copies the label into the feature; the point-in-time
join must only ever see rows at or before the label time, and none older than the ttl."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from requires import require

from mlcompile.runtime.data_steps import extract_features
from mlcompile.runtime.features import FeatureStore
from mlcompile.runtime.io import table_metadata

pd = pytest.importorskip("pandas")  # the `local` extra's stack
require("sklearn", "pyarrow")

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
TTL_DAYS = 10


def _features_config(folder: Path) -> dict:
    return {
        "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
        "sources": [
            {"name": "snapshots", "uri": f"file://{folder / 'snapshots.csv'}", "format": "csv", "timestamp_field": "event_ts"},
            {"name": "labels", "uri": f"file://{folder / 'labels.csv'}", "format": "csv", "timestamp_field": "label_ts"},
        ],
        "views": [
            {
                "name": "activity", "entities": ["customer"], "join_keys": ["customer_id"], "source": "snapshots",
                "ttl_seconds": TTL_DAYS * 86400, "online": False,
                "features": [{"name": "signal", "dtype": "float64"}, {"name": "seen_at", "dtype": "timestamp"}],
            }
        ],
    }  # fmt: skip


@pytest.fixture()
def leaky(tmp_path: Path) -> Path:
    rng = random.Random(3)
    snapshots, labels = [], []
    for i in range(400):
        cid = f"c{i:04d}"
        label_ts = T0 + rng.randint(20, 40) * DAY
        churned = rng.random() < 0.4
        # before the label: noise (what the model may legitimately know)
        for days_before in (rng.randint(1, 8), rng.randint(12, 19)):
            ts = label_ts - days_before * DAY
            snapshots.append((cid, ts, round(rng.random(), 4), ts))
        # after the label: the outcome shows (the leak a naive join picks up)
        ts = label_ts + rng.randint(1, 5) * DAY
        snapshots.append((cid, ts, float(churned), ts))
        labels.append((cid, label_ts, int(churned)))
    # an entity whose only snapshot is older than the ttl: its features must be missing
    snapshots.append(("stale", T0, 0.5, T0))
    labels.append(("stale", T0 + (TTL_DAYS + 1) * DAY, 0))
    # a snapshot at exactly the label time is allowed (at or before)
    snapshots.append(("exact", T0 + 30 * DAY, 0.25, T0 + 30 * DAY))
    labels.append(("exact", T0 + 30 * DAY, 1))
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    pd.DataFrame([(c, iso(t), v, iso(s)) for c, t, v, s in snapshots], columns=["customer_id", "event_ts", "signal", "seen_at"]).sample(
        frac=1, random_state=1
    ).to_csv(tmp_path / "snapshots.csv", index=False)
    pd.DataFrame([(c, iso(t), y) for c, t, y in labels], columns=["customer_id", "label_ts", "churned"]).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path


def _naive_join(folder: Path) -> pd.DataFrame:
    snapshots = pd.read_csv(folder / "snapshots.csv").sort_values("event_ts")
    latest = snapshots.drop_duplicates("customer_id", keep="last")
    return pd.read_csv(folder / "labels.csv").merge(latest, on="customer_id", how="left")


def test_naive_join_leaks_on_this_data(leaky: Path) -> None:
    naive = _naive_join(leaky)
    regular = naive[~naive.customer_id.isin(["stale", "exact"])]
    assert (regular.signal == regular.churned).all()  # the naive feature *is* the label


def test_point_in_time_join_never_sees_the_future_nor_stale_rows(leaky: Path) -> None:
    store = FeatureStore(_features_config(leaky))
    labels = store.source("labels")
    joined, problems = store.join(labels, "label_ts", store.specs(["activity:signal", "activity:seen_at"]))
    assert not problems
    assert list(joined.customer_id) == list(labels.customer_id)  # order kept
    seen = pd.to_datetime(joined.seen_at, utc=True)
    present = seen.notna()
    assert (seen[present] <= joined.label_ts[present]).all(), "a feature newer than its label leaked in"
    assert (seen[present] >= joined.label_ts[present] - TTL_DAYS * DAY).all(), "a feature older than the ttl was used"
    regular = joined[~joined.customer_id.isin(["stale", "exact"])]
    assert regular.signal.notna().all()
    assert (regular.signal != regular.churned).mean() > 0.95  # nothing of the label got through
    # and it picked the *newest* allowed snapshot, not just any earlier one
    raw = store.source("snapshots")
    for _, row in regular.head(50).iterrows():
        allowed = raw[(raw.customer_id == row.customer_id) & (raw.event_ts <= row.label_ts) & (raw.event_ts >= row.label_ts - TTL_DAYS * DAY)]
        assert row.signal == allowed.sort_values("event_ts").signal.iloc[-1]
    stale = joined[joined.customer_id == "stale"].iloc[0]
    assert pd.isna(stale.signal) and pd.isna(stale.seen_at)
    exact = joined[joined.customer_id == "exact"].iloc[0]
    assert exact.signal == 0.25


def test_extract_features_step_is_point_in_time_and_splits_with_the_seed(leaky: Path, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    config = {
        "system": "pit", "step": "extract-features", "kind": "extract_features", "features": _features_config(leaky),
        "params": {"features": ["activity:signal"], "label": {"source": "labels", "column": "churned"}, "split": {"test_fraction": 0.25, "seed": 5}},
    }  # fmt: skip
    outs = {"train": str(tmp_path / "out" / "train.parquet"), "test": str(tmp_path / "out" / "test.parquet")}
    result = extract_features(config, {}, outs)
    assert result["rows"]["total"] == 402 and result["rows"]["test"] == 101
    train, test = pd.read_parquet(outs["train"]), pd.read_parquet(outs["test"])
    meta = table_metadata(outs["train"])
    assert meta["features"] == [{"ref": "activity:signal", "view": "activity", "column": "signal", "dtype": "float64"}]
    assert meta["sources"]["snapshots"]["sha256"] and meta["sources"]["labels"]["rows"] == 402
    # a model on point-in-time features cannot read the label; on naive features it can
    model = HistGradientBoostingClassifier(max_iter=30).fit(train[["signal"]], train.churned)
    assert roc_auc_score(test.churned, model.predict_proba(test[["signal"]])[:, 1]) < 0.7
    naive = _naive_join(leaky).set_index("customer_id")
    assert roc_auc_score(test.churned, naive.loc[test.customer_id, "signal"]) == 1.0
    # same seed, same split
    again = {"train": str(tmp_path / "again" / "train.parquet"), "test": str(tmp_path / "again" / "test.parquet")}
    extract_features(config, {}, again)
    assert list(pd.read_parquet(again["test"]).customer_id) == list(test.customer_id)


def test_parquet_sources_join_like_csv(leaky: Path) -> None:
    csv_config = _features_config(leaky)
    pd.read_csv(leaky / "snapshots.csv").to_parquet(leaky / "snapshots.parquet")
    parquet_config = _features_config(leaky)
    parquet_config["sources"][0].update(uri=f"file://{leaky / 'snapshots.parquet'}", format="parquet")
    joined = []
    for config in (csv_config, parquet_config):
        store = FeatureStore(config)
        frame, _ = store.join(store.source("labels"), "label_ts", store.specs(["activity:signal"]))
        joined.append(frame.signal.fillna(-1.0).tolist())
    assert joined[0] == joined[1]

"""Request rows → the model's input and its answer: each row's features checked against
their declared types, completed from the online store by entity key when the deployment
reads online features, entities the store knows nothing about set aside (answered with no
prediction, and said so), the rest scored in one call of the model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcompile.runtime.serve_protocol import RequestError, typed


class StoreError(RuntimeError):
    """The online feature store failed to answer: a 503 with this message."""


@dataclass
class Assembled:
    rows: list[dict[str, Any]]  # by feature column, typed; only the rows to score
    scored: list[int]  # each row's index in the request
    missing: list[list[str]]  # per request row: the features the store lacked
    unknown: list[int]  # request rows whose entity the store has no value for: not scored


@dataclass
class Assembler:
    """Request rows → the model's input rows (by feature column), reading online features
    when the deployment has an online config."""

    features: list[dict[str, Any]]  # the model's, in input order: ref, column, dtype
    online: dict[str, Any] | None = None
    reader: Any = None
    online_refs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.online is not None:
            served = set(self.online.get("features") or [])
            self.online_refs = [f["ref"] for f in self.features if f["ref"] in served]

    @property
    def entity_keys(self) -> list[str]:
        return list((self.online or {}).get("entity_keys") or [])

    def request_features(self) -> list[dict[str, Any]]:
        """The features the request must carry (none the online store serves)."""
        return [f for f in self.features if f["ref"] not in self.online_refs]

    @staticmethod
    def _given(row: Mapping[str, Any], feature: Mapping[str, Any]) -> tuple[bool, Any]:
        for name in (feature["column"], feature["ref"]):
            if name in row:
                return True, row[name]
        return False, None

    def assemble(self, given: list[dict[str, Any]], kind: str, text: bool = False) -> Assembled:
        if kind == "entities" and self.online is None:
            raise RequestError("this deployment reads no online features (MLCOMPILE_ONLINE_FEATURES is not set): send "
                               '{"instances": [{feature: value, ...}]} with every feature')  # fmt: skip
        if not given:
            raise RequestError("no rows to predict")
        needed = self.request_features()
        sent: list[dict[str, Any]] = []
        for index, row in enumerate(given):
            absent = [f["column"] for f in needed if not self._given(row, f)[0]]
            if absent:
                why = "served by no online view" if self.online is not None else "no online store is configured"
                raise RequestError(
                    f"row {index}: missing feature{'s' if len(absent) > 1 else ''} {', '.join(absent)} ({why}: the request carries {'them' if len(absent) > 1 else 'it'})"
                )
            values = {}
            for feature in self.features:
                present, value = self._given(row, feature)
                if present:
                    try:
                        values[feature["column"]] = typed(value, feature["dtype"], text)
                    except RequestError as exc:
                        raise RequestError(f"row {index}: {feature['column']}: {exc}", exc.status) from None
            sent.append(values)
        stored: list[dict[str, Any]] = [{} for _ in given]
        online = [f for f in self.features if f["ref"] in self.online_refs]
        wanted = [i for i, values in enumerate(sent) if any(f["column"] not in values for f in online)]
        unknown: list[int] = []
        if wanted:
            keys = self.entity_keys
            for index in wanted:
                absent = [k for k in keys if given[index].get(k) is None]
                if absent:
                    raise RequestError(f"row {index}: missing entity key {', '.join(absent)} (the online features are read by {', '.join(keys)})")
                bad = [k for k in keys if isinstance(given[index][k], (dict, list, float, bool))]
                if bad:
                    raise RequestError(f"row {index}: entity key {bad[0]}: expected a string or an integer, got {str(given[index][bad[0]])[:40]}", 422)
            entities = [{k: given[i][k] for k in keys} for i in wanted]
            try:
                read = self.reader.read(entities, self.online_refs)
            except Exception as exc:  # noqa: BLE001 - throttling, credentials, network: the store's, not the request's
                raise StoreError(f"online feature store ({(self.online or {}).get('kind')}): {type(exc).__name__}: {exc}") from exc
            for index, values in zip(wanted, read):
                stored[index] = values
                if all(values.get(ref) is None for ref in self.online_refs):
                    unknown.append(index)
        result = Assembled([], [], [], unknown)
        skip = set(unknown)
        for index, (values, store) in enumerate(zip(sent, stored)):
            out: dict[str, Any] = {}
            lacking: list[str] = []
            for feature in self.features:
                column = feature["column"]
                if column in values:
                    out[column] = values[column]
                else:
                    out[column] = store.get(feature["ref"])
                    if out[column] is None:
                        lacking.append(feature["ref"])
            result.missing.append(lacking)
            if index not in skip:
                result.rows.append(out)
                result.scored.append(index)
        return result


# ---------------------------------------------------------------------- the model's input and answer


def _number(value: Any, dtype: str) -> float:
    """A value as the model's float input (NaN: missing); a store's text is parsed leniently,
    as training's model_frame does."""
    if value is None:
        return float("nan")
    if dtype == "timestamp":
        import pandas as pd

        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value / 1e9
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def model_input(rows: list[dict[str, Any]], features: list[dict[str, Any]]) -> Any:
    """The model's input frame, as `runtime.model.model_frame` makes it (numbers as float64
    with NaN for missing, other values as strings), built straight from typed values."""
    import numpy as np
    import pandas as pd

    from mlcompile.runtime.model import NUMERIC

    columns = {}
    for feature in features:
        column, dtype = feature["column"], feature["dtype"]
        values = [row[column] for row in rows]
        if dtype in NUMERIC:
            columns[column] = np.fromiter((_number(v, dtype) for v in values), dtype=np.float64, count=len(values))
        else:
            columns[column] = np.array([np.nan if v is None or v != v else str(v) for v in values], dtype=object)
    return pd.DataFrame(columns)


# final estimators whose predict is, in scikit-learn's code, the class of highest predict_proba:
# one model call answers both
_ARGMAX = ("ForestClassifier", "BaseDecisionTree", "HistGradientBoostingClassifier", "LogisticRegression", "KNeighborsClassifier", "_BaseNB")


def proba_decides(model: Any) -> bool:
    final = model[-1] if hasattr(model, "steps") else model
    names = {cls.__name__ for cls in type(final).__mro__ if cls.__module__.startswith("sklearn.")}
    return bool(names & set(_ARGMAX)) and hasattr(final, "classes_") and "Regressor" not in type(final).__name__


def score(model: Any, meta: dict[str, Any], X: Any, by_proba: bool) -> tuple[list[Any], list[float]]:
    """(predictions, scores) as `runtime.model.predict` gives them, as plain Python values."""
    import numpy as np

    if hasattr(model, "predict_scored"):  # a container-trained model: its predict entry point answers
        predictions, scores = model.predict_scored(X)
        if scores is None:  # a regressor's score is its prediction
            scores = [float(p) if isinstance(p, (int, float)) else float("nan") for p in predictions]
        return list(predictions), scores
    if meta.get("task") == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        predictions = model.classes_.take(np.argmax(proba, axis=1)) if by_proba else model.predict(X)
        scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    else:
        predictions = scores = model.predict(X)
    return predictions.tolist(), [float(s) for s in scores]

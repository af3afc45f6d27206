"""Online feature reads from a Feast online store.

Config (`MLCOMPILE_ONLINE_FEATURES`, kind `feast`), one of:

    {"kind": "feast", "repo": "/path/to/feature_repo", ...}
        a Feast repository on this machine (the local run's, in its workdir)
    {"kind": "feast", "feature_store_yaml": "<the build's feature_repo/feature_store.yaml>", ...}
        the repository's configuration only (a serving container on a cluster): the registry
        it names holds the definitions, applied by the materialisation pipeline

`read` asks Feast's `get_online_features` for `view:feature` refs by entity key and returns
one row per entity keyed by ref; a value the online store lacks (an unknown entity, or one
whose newest row was older than the view's ttl when it was materialised) is None."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


class FeastReader:
    def __init__(self, config: dict[str, Any]):
        os.environ.setdefault("FEAST_USAGE", "False")  # no usage telemetry
        from feast import FeatureStore

        if config.get("repo"):
            repo = Path(config["repo"])
        elif config.get("feature_store_yaml"):
            # Feast wants a folder; the registry and stores named in the file live elsewhere
            repo = Path(tempfile.mkdtemp(prefix="mlcompile-feast-"))
            (repo / "feature_store.yaml").write_text(config["feature_store_yaml"])
        else:
            raise ValueError("MLCOMPILE_ONLINE_FEATURES (feast): give `repo` or `feature_store_yaml`")
        self.store = FeatureStore(repo_path=str(repo))
        self.entity_keys = list(config.get("entity_keys") or [])

    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        if not entities:
            return []
        keys = self.entity_keys or sorted({k for e in entities for k in e})
        rows = [{k: e.get(k) for k in keys} for e in entities]
        found = self.store.get_online_features(features=list(features), entity_rows=rows, full_feature_names=True).to_dict()
        return [{ref: found[ref.replace(":", "__")][i] for ref in features} for i in range(len(entities))]


def make_reader(config: dict[str, Any]) -> FeastReader:
    return FeastReader(config)

"""Deep-merge of `overrides.<profile>` into the system spec, keeping track of where every
merged value came from so that diagnostics on the merged spec point into the original file.

Mappings merge key by key; lists whose items are all mappings with a `name` merge item by
item on that name (new names are appended); every other value is replaced."""

from __future__ import annotations

from typing import Any

from mlcompile.diagnostics import JsonPath
from mlcompile.spec.loader import Document, SourceMap


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in value)


class _Merger:
    def __init__(self) -> None:
        self.origins: dict[JsonPath, JsonPath] = {}

    def copy(self, value: Any, origin: JsonPath, path: JsonPath) -> Any:
        self.origins[path] = origin
        if isinstance(value, dict):
            return {k: self.copy(v, (*origin, k), (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.copy(v, (*origin, i), (*path, i)) for i, v in enumerate(value)]
        return value

    def merge(self, base: Any, patch: Any, base_origin: JsonPath, patch_origin: JsonPath, path: JsonPath) -> Any:
        if isinstance(base, dict) and isinstance(patch, dict):
            self.origins[path] = base_origin
            merged = {}
            for key, value in base.items():
                if key in patch:
                    merged[key] = self.merge(value, patch[key], (*base_origin, key), (*patch_origin, key), (*path, key))
                else:
                    merged[key] = self.copy(value, (*base_origin, key), (*path, key))
            for key, value in patch.items():
                if key not in base:
                    merged[key] = self.copy(value, (*patch_origin, key), (*path, key))
            return merged
        if _is_named_list(base) and _is_named_list(patch) and patch:
            self.origins[path] = base_origin
            patches = {item["name"]: (index, item) for index, item in enumerate(patch)}
            merged_list: list[Any] = []
            for index, item in enumerate(base):
                if item["name"] in patches:
                    patch_index, patch_item = patches.pop(item["name"])
                    merged_list.append(self.merge(item, patch_item, (*base_origin, index), (*patch_origin, patch_index), (*path, len(merged_list))))
                else:
                    merged_list.append(self.copy(item, (*base_origin, index), (*path, len(merged_list))))
            for patch_index, patch_item in patches.values():
                merged_list.append(self.copy(patch_item, (*patch_origin, patch_index), (*path, len(merged_list))))
            return merged_list
        return self.copy(patch, patch_origin, path)


def apply_overrides(document: Document, profile: str) -> Document:
    """The spec as built for `profile`: `overrides.<profile>` merged in, with a source map
    whose positions point at the override where a value came from it."""
    overrides = document.data.get("overrides")
    if not isinstance(overrides, dict) or not isinstance(overrides.get(profile), dict):
        return document
    merger = _Merger()
    base = {k: v for k, v in document.data.items()}
    merged = merger.merge(base, overrides[profile], (), ("overrides", profile), ())
    original = document.source_map
    source_map = SourceMap(original.file)
    for path, origin in merger.origins.items():
        if origin in original.values:
            source_map.values[path] = original.values[origin]
        if origin in original.keys:
            source_map.keys[path] = original.keys[origin]
    return Document(file=document.file, data=merged, source_map=source_map, sha256=document.sha256)

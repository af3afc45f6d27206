"""Reporting every error of a file at once, even when part of it does not validate.

Cross-reference rules need a validated model, so one structural error would hide every
reference error of the file. Salvage sets aside each structurally broken part — an
unknown key, a bad optional value (left to its default), a broken list item — validates
what remains, and runs the cross-reference rules on that. Paths are translated back to the
original document (list items after a removed one keep their own index and position), and
a diagnostic that only arises because something was set aside (a reference to a removed
view, say) is dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from mlcompile.diagnostics import Diagnostic, JsonPath, format_json_path
from mlcompile.spec.loader import SourceMap
from mlcompile.spec.structure import _data_path, _model_at

MAX_ROUNDS = 5


def _prune(value: Any, path: JsonPath, new_path: JsonPath, cuts: set[JsonPath], mapping: dict[JsonPath, JsonPath]) -> Any:
    """`value` without the subtrees at `cuts`; `mapping` gets pruned path → original path."""
    mapping[new_path] = path
    if isinstance(value, dict):
        return {k: _prune(v, (*path, k), (*new_path, k), cuts, mapping) for k, v in value.items() if (*path, k) not in cuts}
    if isinstance(value, list):
        kept: list[Any] = []
        for index, item in enumerate(value):
            if (*path, index) not in cuts:
                kept.append(_prune(item, (*path, index), (*new_path, len(kept)), cuts, mapping))
        return kept
    return value


def _translate(path: JsonPath, mapping: dict[JsonPath, JsonPath]) -> JsonPath:
    for cut in range(len(path), -1, -1):
        if path[:cut] in mapping:
            return (*mapping[path[:cut]], *path[cut:])
    return path


class _TranslatingSourceMap(SourceMap):
    """Locates diagnostics raised on the pruned document in the original one."""

    def __init__(self, original: SourceMap, mapping: dict[JsonPath, JsonPath]):
        super().__init__(original.file, original.keys, original.values)
        self.mapping = mapping

    def diagnostic(self, path: JsonPath, message: str, *, shown_path: JsonPath | None = None, **kwargs: Any) -> Diagnostic:
        original = _translate(tuple(path), self.mapping)
        shown = _translate(tuple(shown_path), self.mapping) if shown_path is not None else original
        return super().diagnostic(original, message, shown_path=shown, **kwargs)


def _cut_for(root: type[BaseModel], data: Any, path: JsonPath, kind: str) -> JsonPath | None:
    """The part to set aside for one error: the unknown key itself, else the nearest
    optional key or list item around the error; None when only the whole file would do."""
    if kind == "extra_forbidden":
        return path
    for cut in range(len(path), 0, -1):
        prefix = path[:cut]
        if isinstance(prefix[-1], int):
            return prefix
        model = _model_at(root, data, prefix[:-1])
        field = model.model_fields.get(str(prefix[-1])) if model is not None else None
        if field is not None and not field.is_required():
            return prefix
    return None


def salvage(
    data: Any,
    model: type[BaseModel],
    source_map: SourceMap,
    check: Callable[[BaseModel, SourceMap], list[Diagnostic]],
) -> list[Diagnostic]:
    """The cross-reference diagnostics of what validates of `data` (which failed `model`)."""
    cuts: set[JsonPath] = set()
    for _ in range(MAX_ROUNDS):
        mapping: dict[JsonPath, JsonPath] = {}
        working = _prune(data, (), (), cuts, mapping)
        try:
            instance = model.model_validate(working)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                path = _data_path(working, tuple(error["loc"]))
                cut = _cut_for(model, working, path, error["type"])
                if not cut:
                    return []
                cuts.add(_translate(cut, mapping))
            continue
        # what was set aside, as a diagnostic would name it: "'activity'", "monitoring.drift"
        removed = {f"'{name}'" for name in (_name_at(data, cut) for cut in cuts) if name}
        removed |= {format_json_path(cut) for cut in cuts if all(isinstance(part, str) for part in cut)}
        found = check(instance, _TranslatingSourceMap(source_map, mapping))
        return [d for d in found if not any(word in d.message or word in (d.hint or "") for word in removed)]
    return []


def _name_at(data: Any, path: JsonPath) -> str | None:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else None

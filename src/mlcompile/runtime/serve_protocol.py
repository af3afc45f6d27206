"""What a prediction request may be, and how it is read: the body (bounded in size, UTF-8,
bounded in nesting), the protocols clients already speak — the v1 `instances` form (KServe
v1, Vertex AI, SageMaker, Azure ML), `entities`, KServe's Open Inference Protocol v2 and
CSV — and each feature value checked against the type the spec declares.

Every refusal is a `RequestError` carrying its HTTP status and a message that names the row
and the field: 400 (not a request this server reads), 406 (an Accept header that rules JSON
out), 413 (too large), 415 (not UTF-8 or not a content type it reads), 422 (a value of the
wrong type for its feature)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

ENV_MAX_BODY = "MLCOMPILE_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 8 * 1024 * 1024  # above SageMaker's 6 MB invocation payload limit
DRAIN_FACTOR = 2  # a body up to this many times the limit is read and dropped before its 413 (read_body)
MAX_DEPTH = 32  # the deepest request a protocol here shapes is 4 levels (v2: inputs → tensor → data → row)
JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/plain"})  # curl -d sends the second
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}
V2_OUTPUTS = ("predict", "scores")  # every answer's tensors, in this order
V2_DATATYPES = {"int32": "INT32", "int64": "INT64", "float32": "FP32", "float64": "FP64", "bool": "BOOL"}  # others: BYTES


class RequestError(ValueError):
    """A request the server does not answer as sent: `status` and this message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.close = False  # answer, then close the connection: the rest of the body is not read


# ---------------------------------------------------------------------- the body


def content_type(headers: Mapping[str, str]) -> str:
    """The media type, after checking that any charset it names is UTF-8."""
    value = headers.get("content-type", "")
    media, _, parameters = value.partition(";")
    charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", parameters, re.IGNORECASE)
    if charset and charset.group(1).lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise RequestError(f"charset {charset.group(1)}: send the body as UTF-8", 415)
    return media.strip().lower()


async def read_body(request: Any, limit: int) -> bytes:
    """The body, or a 413 once it is known to exceed `limit`. Most clients (urllib, requests,
    a proxy's HTTP client) send the whole body before they read the answer, and see a
    connection reset, not the 413, when the server closes with the body unread: a body up to
    DRAIN_FACTOR times the limit is therefore read to its end and dropped before the 413 is
    answered; a bigger one is refused at once (from its Content-Length before anything is
    read, else once past DRAIN_FACTOR times the limit) and the connection closed."""
    declared = request.headers.get("content-length")
    refusal = None
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(f"Content-Length {declared[:20]!r} is not a number")
        if int(declared) > limit:
            refusal = RequestError(f"the body is {int(declared)} bytes; this server takes at most {limit} ({ENV_MAX_BODY})", 413)
            if int(declared) > DRAIN_FACTOR * limit:
                refusal.close = True
                raise refusal
    body = bytearray()
    taken = 0
    async for chunk in request.stream():
        taken += len(chunk)
        if refusal is None and taken > limit:
            refusal = RequestError(f"the body exceeds {limit} bytes, the most this server takes ({ENV_MAX_BODY})", 413)
        if refusal is None:
            body += chunk
        elif taken > DRAIN_FACTOR * limit:
            refusal.close = True
            raise refusal
    if refusal is not None:
        raise refusal
    return bytes(body)


def accepts_json(headers: Mapping[str, str]) -> None:
    """Refuse (406) a request whose Accept header rules JSON out (SageMaker's `Accept:
    text/csv`): every answer is JSON, and a client that asked for another type would misread it."""
    value = headers.get("accept", "").strip()
    if not value:
        return
    for item in value.split(","):
        media, _, parameters = item.partition(";")
        media = media.strip().lower()
        if re.search(r"(^|;)\s*q\s*=\s*0(\.0*)?\s*(;|$)", parameters):
            continue
        if media in ("*/*", "application/*", "application/json") or media.endswith("+json"):
            return
    raise RequestError(f"Accept {value[:80]}: this server answers application/json only", 406)


def text_of(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"the body is not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}): send UTF-8 JSON or CSV", 415) from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def check_depth(text: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH before it is parsed (brackets inside strings
    do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    import numpy as np

    step = np.zeros(256, dtype=np.int8)
    step[[ord("["), ord("{")]] = 1
    step[[ord("]"), ord("}")]] = -1
    skeleton = np.frombuffer(_STRING.sub("", text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    moves = step[skeleton]
    moves = moves[moves != 0]
    if moves.size and int(np.cumsum(moves, dtype=np.int32).max()) > MAX_DEPTH:
        raise RequestError(f"the JSON is nested more than {MAX_DEPTH} levels deep")


def _no_constant(name: str) -> Any:
    raise RequestError(f"{name} is not JSON: send null for a missing value")


def parse_json(text: str) -> Any:
    check_depth(text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise RequestError(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        if isinstance(exc, RequestError):
            raise
        raise RequestError(f"the body is not JSON ({str(exc)[:120]})") from None


# ---------------------------------------------------------------------- protocols → rows


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def rows_from_body(body: Any, names: list[str]) -> tuple[list[Any], str]:
    """(rows as sent, "instances" | "entities" | "v2") from a parsed JSON body; a row given as
    a list holds the model's features in input order (`names`)."""
    if not isinstance(body, dict):
        raise RequestError('send a JSON object: {"instances": [{feature: value, ...}, ...]}, {"entities": [{key: value, ...}, ...]} '
                           'or an Open Inference Protocol request {"inputs": [...]}, not ' + _show(body))  # fmt: skip
    if "inputs" in body and "instances" not in body:
        if _is_v2(body["inputs"]):
            return v2_rows(body, names), "v2"
        body = {"instances": body["inputs"]}  # KServe v1's other name for the instances
    kind = "instances" if "instances" in body else "entities" if "entities" in body else None
    if kind is None or not isinstance(body[kind], list):
        raise RequestError('send {"instances": [{feature: value, ...}, ...]} or {"entities": [{key: value, ...}, ...]}')
    rows = body[kind]
    for index, row in enumerate(rows):
        if isinstance(row, list) and kind == "instances":
            if len(row) != len(names):
                raise RequestError(f"row {index}: {len(row)} values, the model takes {len(names)} ({', '.join(names)})")
            rows[index] = dict(zip(names, row))
        elif not isinstance(row, dict):
            raise RequestError(f"row {index}: expected a JSON object of feature (or entity key) values, got {_show(row)}")
    return rows, kind


def _is_v2(inputs: Any) -> bool:
    """An Open Inference Protocol `inputs` (tensors, each with a datatype or a shape), rather
    than KServe v1's rows under that name."""
    return not isinstance(inputs, list) or any(isinstance(t, dict) and ("datatype" in t or "shape" in t) for t in inputs)


def v2_rows(body: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Open Inference Protocol v2 `inputs`: one tensor per feature (or entity key), named by
    column or view:feature, of shape [N] or [N, 1]; or one tensor of shape [N, F] holding the
    model's F features in input order. Data is flat (row-major) or nested by row."""
    inputs = body["inputs"]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise RequestError('"inputs" must be a list of tensors {"name", "shape", "datatype", "data"}')
    columns: dict[str, list[Any]] = {}
    count = None
    for tensor in inputs:
        name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
        if (
            not isinstance(name, str)
            or not isinstance(shape, list)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
            or not isinstance(data, list)
        ):
            raise RequestError(f"input {_show(name)}: a tensor needs a name, a shape of non-negative integers and a data list")
        flat = [v for row in data for v in row] if data and all(isinstance(row, list) for row in data) else data
        if math.prod(shape) != len(flat):
            raise RequestError(f"input {name}: shape {shape} holds {math.prod(shape)} values, data has {len(flat)}")
        if len(inputs) == 1 and len(shape) == 2 and shape[1] == len(names) and name not in names:
            return [dict(zip(names, flat[i * shape[1] : (i + 1) * shape[1]])) for i in range(shape[0])]
        if not shape or len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(f"input {name}: shape {shape}: send one tensor of shape [N] per feature, or one of shape [N, {len(names)}] with every feature")
        if count is not None and shape[0] != count:
            raise RequestError(f"input {name}: {shape[0]} rows, the other inputs have {count}")
        count = shape[0]
        columns[name] = flat
    return [{name: values[i] for name, values in columns.items()} for i in range(count or 0)]


def csv_rows(text: str, names: list[str]) -> list[dict[str, Any]]:
    """SageMaker's text/csv: one instance a line, the model's features in input order."""
    rows = []
    for number, values in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not values:
            continue
        if len(values) != len(names):
            raise RequestError(f"csv line {number}: {len(values)} values, the model takes {len(names)} ({', '.join(names)})")
        rows.append({name: (value if value != "" else None) for name, value in zip(names, values)})
    return rows


# ---------------------------------------------------------------------- values by type


def typed(value: Any, dtype: str, text: bool = False) -> Any:
    """`value` as the feature's dtype (None: missing), or a 422 saying what was expected (the
    caller names the row and field). JSON values must have the JSON type of the dtype; CSV
    values (`text`) are parsed."""
    kind = type(value)  # the common cases first: this runs for every value of every row
    if kind is int and dtype in INT_RANGES and INT_RANGES[dtype][0] <= value <= INT_RANGES[dtype][1]:
        return value
    if kind is float and dtype in FLOAT_MAX and abs(value) <= FLOAT_MAX[dtype]:
        return value
    if kind is str and dtype == "string" or value is None:
        return value
    if text and isinstance(value, str):
        value = _parse_text(value, dtype)
        if value is None:
            return None
    if isinstance(value, (dict, list)):
        raise RequestError(f"expected a single {dtype} value, got {_show(value)}", 422)
    if dtype in INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        low, high = INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(f"expected an integer ({dtype}, {low}..{high}), got {_show(value)}", 422)
        return value
    if dtype in FLOAT_MAX:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"expected a number ({dtype}), got {_show(value)}", 422)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if number != number:
            return None
        if abs(number) > FLOAT_MAX[dtype]:
            raise RequestError(f"{_show(value)} is out of {dtype}'s range", 422)
        return number
    if dtype == "bool":
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise RequestError(f"expected true or false, got {_show(value)}", 422)
    if not isinstance(value, str):
        raise RequestError(f"expected a string ({dtype}), got {_show(value)}", 422)
    if dtype == "timestamp":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise RequestError(f"expected an ISO 8601 timestamp, got {_show(value)}", 422) from None
    return value


def _parse_text(value: str, dtype: str) -> Any:
    stripped = value.strip()
    try:
        if dtype in INT_RANGES:
            return int(stripped) if re.fullmatch(r"[+-]?\d+", stripped) else float(stripped)
        if dtype in FLOAT_MAX:
            return float(stripped)
    except ValueError:
        raise RequestError(f"expected a number ({dtype}), got {_show(value)}", 422) from None
    if dtype == "bool":
        flag = {"true": True, "false": False, "1": True, "0": False}.get(stripped.lower())
        if flag is None:
            raise RequestError(f"expected true or false, got {_show(value)}", 422)
        return flag
    return value


def v2_requested(body: Mapping[str, Any]) -> list[str]:
    """The outputs an Open Inference Protocol request asks for (all when it names none)."""
    asked = body.get("outputs")
    if asked is None:
        return list(V2_OUTPUTS)
    names: list[Any] = [o.get("name") if isinstance(o, dict) else o for o in asked] if isinstance(asked, list) else [asked]
    unknown = [n for n in names if n not in V2_OUTPUTS]
    if unknown:
        raise RequestError(f"output {_show(unknown[0])}: this model's outputs are {', '.join(V2_OUTPUTS)}")
    return [name for name in V2_OUTPUTS if name in names]  # in the model's order, each once


def v2_datatype(dtype: str) -> str:
    return V2_DATATYPES.get(dtype, "BYTES")


def v2_output(name: str, values: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": [len(values)], "datatype": v2_values_datatype(values), "data": values}


def v2_values_datatype(values: list[Any]) -> str:
    """The v2 datatype of these values (a model's classes, or its answers)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"

"""The prediction server (`python -m mlcompile.runtime serve`, which `mlcompile serve` also
runs) facing careless and hostile requests: every body gets an answer that is not a 500,
every value is checked against its feature's declared type, the body is bounded in size and
nesting and must be UTF-8, the same row sent in any protocol (v1 by column or view:feature,
a list in input order, CSV, Open Inference Protocol v2) gets the same prediction, and the
health routes answer while a body is refused or a prediction is slow."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from requires import require

require("sklearn", "starlette")
uvicorn = pytest.importorskip("uvicorn")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

with warnings.catch_warnings():  # starlette prefers httpx2 to the installed httpx: nothing this file tests
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from test_runtime_serve import C1, C2, FEATURES, Slow, expected, free_port, model_dir, sagemaker_online_env  # noqa: E402,F401

from mlcompile.runtime.serve import create_app  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COLUMNS = [f["column"] for f in FEATURES]


@pytest.fixture(scope="module")
def client(model_dir: Path) -> TestClient:
    return TestClient(create_app(model_dir, name="churn-scorer", environ={"MLCOMPILE_MAX_BODY_BYTES": "65536"}), raise_server_exceptions=False)


rows = st.fixed_dictionaries({
    "orders_30d": st.integers(0, 50), "spend_30d": st.floats(0, 1e4, allow_nan=False), "support_tickets_30d": st.integers(0, 20),
    "plan": st.sampled_from(["basic", "plus", "pro", "enterprise"]), "tenure_days": st.integers(0, 5000),
})  # fmt: skip


# ------------------------------------------------------------------ one row, any protocol, one answer


@SETTINGS
@given(row=rows)
def test_a_row_gets_the_same_prediction_in_every_protocol(client: TestClient, model_dir: Path, row: dict[str, Any]) -> None:
    """Named by column or view:feature, as a list in input order, as a CSV line or as v2
    tensors: the model's own prediction for the row (the quick-start server once answered
    view:feature names with a prediction on empty features)."""
    want = expected(model_dir, row)
    by_ref = {f["ref"]: row[f["column"]] for f in FEATURES}
    answers = [
        client.post("/predict", json={"instances": [row]}).json()["predictions"],
        client.post("/predict", json={"instances": [by_ref]}).json()["predictions"],
        client.post("/predict", json={"instances": [[row[c] for c in COLUMNS]]}).json()["predictions"],
        client.post("/invocations", content=",".join(str(row[c]) for c in COLUMNS), headers={"content-type": "text/csv"}).json()["predictions"],
    ]
    tensors = [{"name": f["column"], "shape": [1], "datatype": "BYTES" if f["dtype"] == "string" else "FP64", "data": [row[f["column"]]]} for f in FEATURES]
    v2 = client.post("/v2/models/churn-scorer/infer", json={"id": "r1", "inputs": tensors}).json()
    answers.append(v2["outputs"][0]["data"])
    matrix = {"name": "input-0", "shape": [1, len(COLUMNS)], "datatype": "BYTES", "data": [[row[c] for c in COLUMNS]]}
    answers.append(client.post("/v2/models/churn-scorer/infer", json={"inputs": [matrix]}).json()["outputs"][0]["data"])
    assert answers == [want] * len(answers)
    assert v2["id"] == "r1" and v2["model_name"] == "churn-scorer" and v2["outputs"][1]["name"] == "scores"


def test_the_open_inference_protocol_routes(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/churn-scorer/ready").json() == {"name": "churn-scorer", "ready": True}
    metadata = client.get("/v2/models/churn-scorer").json()
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (f["column"], {"int64": "INT64", "float64": "FP64", "string": "BYTES"}[f["dtype"]]) for f in FEATURES
    ]
    assert client.get("/v2/models/other").status_code == 404
    assert client.post("/v2/models/other/infer", json={"inputs": []}).status_code == 404
    ragged = [{"name": "orders_30d", "shape": [2], "datatype": "INT64", "data": [1]}]
    assert client.post("/v2/models/churn-scorer/infer", json={"inputs": ragged}).status_code == 400


def test_the_v2_metadata_declares_the_datatypes_the_answers_carry(client: TestClient) -> None:
    """A client that reads a model's metadata to decode its outputs (Triton's, MLServer's
    codecs) gets what it was told: the metadata once said BYTES for 0/1 class labels that
    every answer sent as INT64."""
    declared = {o["name"]: o["datatype"] for o in client.get("/v2/models/churn-scorer").json()["outputs"]}
    tensors = [{"name": c, "shape": [2], "datatype": "BYTES", "data": [C1[c], C2[c]]} for c in COLUMNS]
    answered = {o["name"]: o["datatype"] for o in client.post("/v2/models/churn-scorer/infer", json={"inputs": tensors}).json()["outputs"]}
    assert answered == declared == {"predict": "INT64", "scores": "FP64"}


def test_a_v2_answer_holds_the_outputs_asked_for_and_no_null_id(client: TestClient, model_dir: Path) -> None:
    """The protocol's `outputs` selects tensors; `id` and `model_version` are strings when
    present, so a request without an id gets an answer without one (not `"id": null`)."""
    tensors = [{"name": c, "shape": [1], "datatype": "BYTES", "data": [C1[c]]} for c in COLUMNS]
    answer = client.post("/v2/models/churn-scorer/infer", json={"inputs": tensors, "outputs": [{"name": "predict"}]}).json()
    assert "id" not in answer and "model_version" not in answer
    assert answer["outputs"] == [{"name": "predict", "shape": [1], "datatype": "INT64", "data": expected(model_dir, C1)}]
    scores = client.post("/v2/models/churn-scorer/infer", json={"inputs": tensors, "outputs": [{"name": "scores"}]}).json()
    assert [o["name"] for o in scores["outputs"]] == ["scores"]
    refused = client.post("/v2/models/churn-scorer/infer", json={"inputs": tensors, "outputs": [{"name": "probabilities"}]})
    assert refused.status_code == 400 and "probabilities" in refused.json()["error"]


def test_the_v2_routes_of_a_version_answer_for_the_served_version_only(model_dir: Path) -> None:
    """The protocol's model routes with `/versions/<v>`: metadata and readiness of the
    version served, and a 404 for another version rather than its answer from this one."""
    versioned = TestClient(create_app(model_dir, name="churn-scorer", version="3"), raise_server_exceptions=False)
    assert versioned.get("/v2/models/churn-scorer/versions/3").json()["versions"] == ["3"]
    assert versioned.get("/v2/models/churn-scorer/versions/3/ready").json() == {"name": "churn-scorer", "ready": True}
    tensors = [{"name": c, "shape": [1], "datatype": "BYTES", "data": [C1[c]]} for c in COLUMNS]
    assert versioned.post("/v2/models/churn-scorer/versions/3/infer", json={"inputs": tensors}).json()["model_version"] == "3"
    other = versioned.post("/v2/models/churn-scorer/versions/9/infer", json={"inputs": tensors})
    assert other.status_code == 404 and "version '9'" in other.json()["error"]


def test_binary_tensors_are_a_415_that_says_to_send_json(client: TestClient) -> None:
    """tritonclient sends binary tensor data unless told otherwise; this server reads JSON
    tensors only (its /v2 lists no extension) and says how to ask for them."""
    binary = client.post("/v2/models/churn-scorer/infer", content=b'{"inputs": []}\x00\x00', headers={
        "content-type": "application/octet-stream", "inference-header-content-length": "14"})  # fmt: skip
    assert binary.status_code == 415 and "binary_data=False" in binary.json()["error"]
    assert client.get("/v2").json()["extensions"] == []


def test_an_unknown_route_or_method_is_a_json_error(client: TestClient) -> None:
    """Clients parse every error body as {"error": ...} (the Open Inference Protocol's
    form, and the one this server's own refusals take), a 404 or 405 included."""
    wrong_method = client.get("/invocations")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    assert wrong_method.json()["error"].startswith("Method Not Allowed")
    no_route = client.post("/v2/repository/index")
    assert no_route.status_code == 404 and no_route.json()["error"].startswith("Not Found")


def test_kserve_v1_rows_may_be_sent_as_inputs(client: TestClient, model_dir: Path) -> None:
    """KServe v1 reads `{"inputs": [...]}` as another name for the instances: rows by
    feature or in input order get the same answer as under `instances`."""
    want = expected(model_dir, C1, C2)
    for rows in ([C1, C2], [[C1[c] for c in COLUMNS], [C2[c] for c in COLUMNS]]):
        answer = client.post("/v1/models/churn-scorer:predict", json={"inputs": rows})
        assert answer.status_code == 200 and answer.json()["predictions"] == want


@pytest.mark.parametrize("accept, status", [
    ("text/csv", 406), ("application/jsonlines", 406), ("application/json;q=0, text/csv", 406),
    ("application/json", 200), ("*/*", 200), ("text/html, */*;q=0.8", 200), ("application/vnd.api+json", 200),
])  # fmt: skip
def test_an_accept_header_that_rules_json_out_is_a_406(client: TestClient, accept: str, status: int) -> None:
    """SageMaker passes the caller's Accept on: a caller asking for CSV is told the server
    answers JSON only, rather than handed JSON to parse as CSV."""
    answer = client.post("/invocations", content=",".join(str(C1[c]) for c in COLUMNS), headers={"content-type": "text/csv", "accept": accept})
    assert answer.status_code == status
    if status == 406:
        assert "application/json" in answer.json()["error"]


# ------------------------------------------------------------------ what the request must carry


@pytest.mark.parametrize("body", [{"instances": []}, [{}], [1], {"instances": [1]}, {"instances": {}}, {"rows": []}, "x", None, {"inputs": [{}]}])
def test_bodies_of_the_wrong_shape_are_a_400_that_says_what_to_send(client: TestClient, body: Any) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_a_row_without_a_feature_is_a_400_naming_it(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [C1, {k: v for k, v in C2.items() if k != "plan"}]})
    assert response.status_code == 400 and response.json()["error"].startswith("row 1: missing feature plan")


# ------------------------------------------------------------------ values against the declared types


@pytest.mark.parametrize(("field", "value", "says"), [
    ("orders_30d", "abc", "expected an integer (int64"), ("orders_30d", 2.5, "expected an integer"), ("orders_30d", True, "expected an integer"),
    ("orders_30d", 10**30, "expected an integer (int64"), ("spend_30d", 10**400, "out of float64's range"), ("spend_30d", "5", "expected a number"),
    ("plan", 3, "expected a string"), ("plan", {"a": 1}, "expected a single string value"), ("tenure_days", [1, 2], "expected a single int64 value"),
])  # fmt: skip
def test_a_value_of_the_wrong_type_is_a_422_naming_the_row_and_field(client: TestClient, field: str, value: Any, says: str) -> None:
    response = client.post("/predict", json={"instances": [C1, {**C2, field: value}]})
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"row 1: {field}: ") and says in response.json()["error"]


def test_csv_values_are_parsed_by_type_and_a_bad_one_is_a_422(client: TestClient, model_dir: Path) -> None:
    line = ",".join(str(C2[c]) for c in COLUMNS)
    assert client.post("/invocations", content=f"{line}\n{line.replace('9', 'x', 1)}", headers={"content-type": "text/csv"}).status_code == 422
    blank = client.post("/invocations", content=line.replace("120.0", ""), headers={"content-type": "text/csv"})
    assert blank.json()["predictions"] == expected(model_dir, {**C2, "spend_30d": None})  # an empty value is missing


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(body=json_values, field=st.sampled_from(COLUMNS), value=json_values)
def test_no_json_body_is_a_500(client: TestClient, body: Any, field: str, value: Any) -> None:
    """Any JSON at all, and any value in any feature of an otherwise good row: an answer or a
    400/422, never a server error."""
    assert client.post("/predict", json=body).status_code in (200, 400, 422)
    response = client.post("/predict", json={"instances": [{**C1, field: value}]})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert field in response.json()["error"]


# ------------------------------------------------------------------ the body: encoding, nesting, size


def test_a_body_that_is_not_utf8_is_a_415(client: TestClient) -> None:
    for raw, headers in ((json.dumps({"instances": [C1]}).encode("utf-16"), {"content-type": "application/json"}),
                         (b'{"instances": [{"plan": "\xe9"}]}', {"content-type": "application/json"}),
                         (json.dumps({"instances": [C1]}).encode(), {"content-type": "application/json; charset=latin-1"}),
                         (b"1,2", {"content-type": "application/octet-stream"})):  # fmt: skip
        response = client.post("/predict", content=raw, headers=headers)
        assert response.status_code == 415, (raw[:20], response.text)


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
def test_json_nested_deeper_than_any_protocol_is_a_400(client: TestClient, depth: int) -> None:
    response = client.post("/predict", content="[" * depth + "]" * depth, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested more than 32 levels" in response.json()["error"]
    # brackets inside strings are text, not nesting
    assert client.post("/predict", json={"instances": [{**C1, "plan": "[" * 100}]}).status_code == 200


def test_nan_and_infinity_literals_are_not_json(client: TestClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        response = client.post("/predict", content='{"instances": [{"spend_30d": %s}]}' % literal, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "not JSON" in response.json()["error"]


async def _asgi(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """(status, chunks the app read) for one POST /predict straight into the app."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/predict",
             "raw_path": b"/predict", "query_string": b"", "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), read


def test_a_body_over_the_limit_is_a_413_before_it_is_read(client: TestClient) -> None:
    import asyncio

    app = client.app
    chunks = [b"x" * 16384] * 64  # 1 MiB, against the fixture's 64 KiB limit
    declared = [(b"content-type", b"application/json"), (b"content-length", str(16384 * 64).encode())]
    assert asyncio.run(_asgi(app, declared, chunks)) == (413, 0)  # from Content-Length: nothing read
    streamed = asyncio.run(_asgi(app, [(b"content-type", b"application/json")], chunks))  # chunked: no length
    assert streamed == (413, 9)  # over 64 KiB at the 5th chunk, read on to twice the limit, the rest never read
    near = chunks[:6]  # 96 KiB: over the limit, within twice it: read to its end, then refused
    assert asyncio.run(_asgi(app, [(b"content-type", b"application/json"), (b"content-length", b"98304")], near)) == (413, 6)


def test_a_client_that_sends_its_whole_body_first_reads_the_413(model_dir: Path) -> None:
    """urllib (like requests, and the platforms' proxies) writes the whole body before it
    reads the answer: a body a little over the limit must not be cut off under it (a
    connection reset instead of the 413 it could act on)."""
    import urllib.error
    import urllib.request

    limit = 4 << 20  # a body bigger than the sockets' buffers hold, or the kernel would take it all anyway
    with serving(create_app(model_dir, environ={"MLCOMPILE_MAX_BODY_BYTES": str(limit)})) as port:
        body = json.dumps({"instances": [C1] * 75_000}).encode()  # about 7.5 MiB
        assert limit < len(body) <= 2 * limit
        for headers in ({"content-type": "application/json"}, {"content-type": "application/json", "transfer-encoding": "chunked"}):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict", data=body if "transfer-encoding" not in headers else iter([body]), headers=headers
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 413 and str(limit) in json.loads(refused.value.read())["error"]


# ------------------------------------------------------------------ over HTTP: limits and health under load


@contextmanager
def serving(app: Any) -> Any:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def timed_health(port: int) -> float:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
    return time.monotonic() - start


def post_huge(port: int, size: int, chunked: bool) -> tuple[bytes, float, int]:
    """(status line, seconds to it, bytes the server took) for a POST of `size` bytes, sent
    in 1 MiB pieces while the answer is awaited."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = "transfer-encoding: chunked" if chunked else f"content-length: {size}"
    start = time.monotonic()
    sock.sendall(f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{head}\r\n\r\n".encode())
    sent = 0

    def push() -> None:
        nonlocal sent
        piece = b"[" * (1 << 20)
        framed = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
        try:
            while sent < size:
                sock.sendall(framed)
                sent += len(piece)
        except OSError:
            pass  # the server closed the connection: what a refusal does

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    status = sock.recv(64).split(b"\r\n")[0]
    took = time.monotonic() - start
    sock.close()
    pusher.join(10)
    return status, took, sent


def test_a_200_mb_body_is_refused_within_a_second_while_health_answers(model_dir: Path) -> None:
    with serving(create_app(model_dir, environ={})) as port:
        for chunked in (False, True):
            probes: list[float] = []
            done = threading.Event()

            def probe() -> None:
                while not done.is_set():
                    probes.append(timed_health(port))

            prober = threading.Thread(target=probe)
            prober.start()
            status, took, sent = post_huge(port, 200 << 20, chunked)
            done.set()
            prober.join()
            assert status == b"HTTP/1.1 413 Request Entity Too Large" and took < 1.0, (chunked, status, took)
            assert sent < 100 << 20  # the server stopped taking it
            assert probes and max(probes) < 0.1, probes


def test_health_answers_while_predictions_are_slow(model_dir: Path) -> None:
    """Predictions run in worker threads: a slow one (here the online store takes a second)
    does not hold the health routes."""
    app = create_app(model_dir, environ={"MLCOMPILE_ONLINE_FEATURES": sagemaker_online_env()}, reader=Slow())
    with serving(app) as port:
        body = json.dumps({"entities": [{"customer_id": "C1"}]}).encode()
        slow = [threading.Thread(target=_post, args=(port, body)) for _ in range(3)]
        for thread in slow:
            thread.start()
        time.sleep(0.2)
        probes = [timed_health(port) for _ in range(5)]
        for thread in slow:
            thread.join()
    assert max(probes) < 0.1, probes


def _post(port: int, body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        sock.recv(64)

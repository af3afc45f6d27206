"""Benchmark the prediction server (`python -m mlcompile.runtime serve`, which `mlcompile serve`
also runs) against a floor and, when it is installed, MLServer's scikit-learn runtime.

    python bench/serve.py [--seconds 5] [--rounds 3] [--connections 4] [--mlserver PATH/TO/mlserver] [--json]

The model: a 50-tree random forest (n_jobs=-1, as the batch-scoring example declares it)
trained by the runtime's own train step on churn-like data, five features (three int64, a
float64, a string).

Servers, each its own process with one uvicorn worker, loaded one at a time:
  floor     a bare Starlette app: `await request.json()` → `pandas.DataFrame(instances)` →
            the same model's `predict` (n_jobs=1, as the server sets it) in Starlette's
            thread pool (as the server runs it: on a machine shared with other work, a server
            with more runnable threads gets more of the cores), no checks
  mlcompile the runtime server: POST /predict with {"instances": [...]}
  mlserver  MLServer + mlserver-sklearn, the same model.joblib, Open Inference Protocol v2
            with pandas columns (only with --mlserver: the `mlserver` command of another
            environment holding mlserver, mlserver-sklearn and the same scikit-learn)

Load: a closed loop of N keep-alive connections (an asyncio HTTP/1.1 client in this file, so
it runs anywhere; the client shares the machine's cores with the server), 1-row and 100-row
requests. Each round measures every server for `--seconds`, the servers taking turns in one-second
slices; the throughput ratio floor/mlcompile is computed per round (machines shared with other work are noisy: compare
within a round). Target: mlcompile's throughput ≥ floor / 1.2.

Last, the limits: a 200 MB body (declared, then chunked) is refused with 413 within 1 s,
and GET /health answers in < 100 ms meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROW = {"orders_30d": 1, "spend_30d": 5.0, "support_tickets_30d": 6, "plan": "basic", "tenure_days": 20}
FLOOR = """
import sys, joblib, pandas as pd, uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route
model = joblib.load(sys.argv[1])
model.set_params(estimator__n_jobs=1)
async def predict(request):
    body = await request.json()
    predictions = await run_in_threadpool(model.predict, pd.DataFrame(body["instances"]))
    return JSONResponse({"predictions": predictions.tolist()})
async def health(request):
    return JSONResponse({"status": "ok"})
uvicorn.run(Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def train(folder: Path) -> Path:
    """The runtime's train step on 2,000 churn-like rows (the serving tests' data): the model folder."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
    from serve_support import train_churn_model

    return train_churn_model(
        folder, "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 50, "n_jobs": -1, "random_state": 0}, rows=2000, system="bench"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, health: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    # the server's output goes to a file: an unread pipe fills and blocks a server that logs
    errors = open(log or os.devnull, "wb")  # noqa: SIM115 - the server's, closed when it ends
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=errors, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {health} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:] if log else ''}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{' '.join(command)} did not answer {health} within 120 s")


def request_bytes(path: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes) -> int:
    writer.write(message)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return status


def combine(parts: list[dict]) -> dict[str, float]:
    latencies = sorted(x for part in parts for x in part["latencies"])
    took = sum(part["seconds"] for part in parts)
    return {"rps": round(len(latencies) / took, 1), "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
            "requests": len(latencies), "errors": sum(part["errors"] for part in parts)}  # fmt: skip


async def load(port: int, message: bytes, seconds: float, connections: int) -> dict:
    """A closed loop of keep-alive connections for `seconds`: each request's latency."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            began = time.perf_counter()
            if await _exchange(reader, writer, message) != 200:
                errors += 1
            latencies.append(time.perf_counter() - began)
        writer.close()

    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    took = time.monotonic() - began
    return {"latencies": latencies, "seconds": took, "errors": errors}


def v2_body(rows: list[dict]) -> bytes:
    inputs = [{"name": c, "shape": [len(rows)], "datatype": "BYTES" if c == "plan" else "FP64", "data": [r[c] for r in rows]} for c in ROW]
    return json.dumps({"inputs": inputs, "parameters": {"content_type": "pd"}}).encode()


def mlserver_folder(model: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.joblib").write_bytes((model / "model.joblib").read_bytes())
    (folder / "model-settings.json").write_text(
        json.dumps({"name": "churn", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}})
    )
    (folder / "settings.json").write_text(json.dumps({"metrics_endpoint": None, "parallel_workers": 0}))
    return folder


def limits(port: int) -> dict[str, object]:
    """A 200 MB body, declared then chunked: seconds to the 413, and /health's worst time meanwhile."""
    results: dict[str, object] = {}
    for chunked in (False, True):
        probes: list[float] = []
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                began = time.monotonic()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                    sock.recv(64)
                probes.append(time.monotonic() - began)

        prober = threading.Thread(target=probe)
        prober.start()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = "transfer-encoding: chunked" if chunked else f"content-length: {200 << 20}"
        began = time.monotonic()
        sock.sendall(f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{head}\r\n\r\n".encode())
        piece = b"[" * (1 << 20)
        framed = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece

        def push() -> None:
            try:
                for _ in range(200):
                    sock.sendall(framed)
            except OSError:
                pass

        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        status = sock.recv(64).split(b"\r\n")[0].decode()
        took = time.monotonic() - began
        sock.close()
        done.set()
        prober.join()
        results["chunked" if chunked else "content-length"] = {
            "status": status,
            "seconds": round(took, 3),
            "health_max_ms": round(1000 * max(probes or [0]), 1),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mlserver", help="the mlserver command of an environment with mlserver-sklearn")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mlcompile-bench-serve-"))
    model = train(scratch)
    env = {"PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ports = {"floor": free_port(), "mlcompile": free_port()}
    (scratch / "floor.py").write_text(FLOOR)
    servers = {
        "floor": start(
            [sys.executable, str(scratch / "floor.py"), str(model / "model.joblib"), str(ports["floor"])], ports["floor"], "/health", log=scratch / "floor.log"
        ),
        "mlcompile": start(
            [sys.executable, "-m", "mlcompile.runtime", "serve", "--model-dir", str(model), "--port", str(ports["mlcompile"]), "--host", "127.0.0.1"],
            ports["mlcompile"],
            "/health",
            env,
            scratch / "mlcompile.log",
        ),  # fmt: skip
    }
    if args.mlserver:
        ports["mlserver"] = free_port()
        folder = mlserver_folder(model, scratch / "mlserver")
        servers["mlserver"] = start([args.mlserver, "start", str(folder)], ports["mlserver"], "/v2/health/ready",
                                    {"MLSERVER_HTTP_PORT": str(ports["mlserver"]), "MLSERVER_GRPC_PORT": str(free_port()), "MLSERVER_METRICS_ENDPOINT": "", "MLSERVER_PARALLEL_WORKERS": "0"}, scratch / "mlserver.log")  # fmt: skip
    report: dict[str, object] = {
        "model": "RandomForestClassifier(n_estimators=50), 5 features",
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": [],
    }
    try:
        for _ in range(args.rounds):
            round_: dict[str, object] = {}
            for rows in (1, 100):
                batch = [ROW] * rows
                messages = {"floor": request_bytes("/predict", json.dumps({"instances": batch}).encode()),
                            "mlcompile": request_bytes("/predict", json.dumps({"instances": batch}).encode()),
                            "mlserver": request_bytes("/v2/models/churn/infer", v2_body(batch))}  # fmt: skip
                for name in servers:
                    asyncio.run(load(ports[name], messages[name], 0.5, 1))  # warm-up
                # the servers take turns in slices of a second, so that each meets the same
                # share of whatever else the machine is doing
                slices: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
                for _ in range(max(1, round(args.seconds))):
                    for name in servers:
                        slices[name].append(asyncio.run(load(ports[name], messages[name], args.seconds / max(1, round(args.seconds)), args.connections)))
                measured: dict[str, object] = {name: combine(parts) for name, parts in slices.items()}
                measured["floor/mlcompile"] = round(measured["floor"]["rps"] / measured["mlcompile"]["rps"], 3)  # type: ignore[index]
                round_[f"{rows}-row"] = measured
            report["rounds"].append(round_)  # type: ignore[union-attr]
        report["limits"] = limits(ports["mlcompile"])
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=30)
    ratios = {shape: [r[shape]["floor/mlcompile"] for r in report["rounds"]] for shape in ("1-row", "100-row")}  # type: ignore[index,union-attr]
    report["floor/mlcompile median"] = {shape: statistics.median(values) for shape, values in ratios.items()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for number, round_ in enumerate(report["rounds"], start=1):  # type: ignore[arg-type]
            for shape, measured in round_.items():
                cells = "  ".join(
                    f"{name} {m['rps']:7.1f} req/s p50 {m['p50_ms']:6.1f} ms p99 {m['p99_ms']:6.1f} ms" for name, m in measured.items() if isinstance(m, dict)
                )
                print(f"round {number} {shape:7}  {cells}  floor/mlcompile {measured['floor/mlcompile']}")
        print("floor/mlcompile throughput, median of rounds:", report["floor/mlcompile median"], "(target ≤ 1.2)")
        print("200 MB body:", json.dumps(report["limits"]))
    within = all(v <= 1.2 for v in report["floor/mlcompile median"].values())  # type: ignore[union-attr]
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())

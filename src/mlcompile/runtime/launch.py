"""`python -m mlcompile.runtime.launch <step> --config JSON --input NAME=PATH --output
NAME=PATH`: the pipeline task that runs a step as a platform job (the `platform_job` section of
its config, rendered by the kubeflow/vertex targets).

It replaces `{{inputs.NAME}}` / `{{outputs.NAME}}` in the job with the artifacts' remote URIs
(KFP mounts `gs://b/…` at `/gcs/b/…`, `s3://` at `/s3/`, `minio://` at `/minio/`) and
`{{secret:NAME}}` with the secret's value (vertex: Secret Manager), creates the job, waits at
most `timeout_seconds` (then cancels it and fails), and for tuning copies the best trial's
model and metrics to the task's outputs. Needs the platform's SDK in the runtime image:
`kubernetes` (kubeflow) or `google-cloud-aiplatform` (vertex).

What it creates does not outlive the run: on SIGTERM (a cancelled run stops its pods) it
cancels the Vertex AI job or deletes the Kubernetes object before exiting, and a Katib
Experiment or PyTorchJob is owned by the launcher's pod (ownerReferences, from the pod name
and uid the task gets through the downward API) so Kubernetes collects it with the pod."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from mlcompile.runtime import lineage
from mlcompile.runtime.contract import ENV_POD_NAME, ENV_POD_UID, ENV_VERTEX_API_ENDPOINT

MOUNTS = {"/gcs/": "gs://", "/s3/": "s3://", "/minio/": "minio://"}
EXECUTOR_OUTPUT = "$executor_output"  # key of the ExecutorOutput path among a task's outputs
VERTEX_MODEL = "vertex_model"  # the register task's google.VertexModel output (vertex target)
POLL_SECONDS = float(os.environ.get("MLCOMPILE_LAUNCH_POLL_SECONDS", "30"))
_PLACEHOLDER = re.compile(r"\{\{(?:(inputs|outputs)\.|(secret):)([A-Za-z0-9_.-]+)\}\}")
# KFP's pipeline-job-id placeholder (vertex bodies: per-run output folders); a runner that
# left it unfilled gets a fresh id, so that two launches still never share a folder
PIPELINE_JOB_ID = "{{$.pipeline_job_uuid}}"
TRIAL_METRICS_FILE = "metrics.json"  # a Vertex trial's metrics, beside its AIP_MODEL_DIR
_cleanups: list[Callable[[], None]] = []  # how to stop what this process created


class LaunchFailed(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM arrived: the run was cancelled (BaseException: no `except Exception` swallows it)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def _created(cleanup: Callable[[], None]) -> None:
    """Remember how to stop a job this process just created (run on SIGTERM)."""
    _cleanups.append(cleanup)


def _clean_up() -> None:
    while _cleanups:
        cleanup = _cleanups.pop()
        try:
            cleanup()
        except Exception as exc:  # noqa: BLE001 - already gone, or the API is unreachable: say so, go on
            print(f"[mlcompile.launch] could not stop a job on termination: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def uri_of(path: str) -> str:
    for mount, scheme in MOUNTS.items():
        if path.startswith(mount):
            return scheme + path[len(mount) :]
    from mlcompile.runtime.emulated_storage import emulate_root
    from mlcompile.runtime.emulated_storage import uri_of as emulated_uri

    root = emulate_root()  # under the emulator the mount is a folder of the emulation root
    return emulated_uri(path, root) if root is not None else path


def substitute(value: Any, inputs: dict[str, str], outputs: dict[str, str], secret: Callable[[str], str]) -> Any:
    def replace(match: re.Match[str]) -> str:
        artifact, is_secret, name = match.groups()
        kind = artifact or is_secret
        if kind == "secret":
            return secret(name)
        table = inputs if kind == "inputs" else outputs
        if name not in table:
            raise LaunchFailed(f"the job refers to {kind} '{name}', which this task does not have")
        return uri_of(table[name])

    if isinstance(value, str):
        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, list):
        return [substitute(v, inputs, outputs, secret) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, inputs, outputs, secret) for k, v in value.items()}
    return value


def _wait(poll: Callable[[], str | None], cancel: Callable[[], None], timeout: int | None, what: str) -> None:
    """`poll` returns None while running, "succeeded", or a failure message."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    while True:
        state = poll()
        if state == "succeeded":
            return
        if state is not None:
            raise LaunchFailed(f"{what}: {state}")
        if deadline is not None and time.monotonic() > deadline:
            cancel()
            raise LaunchFailed(f"{what}: still running after {timeout} s: cancelled")
        time.sleep(POLL_SECONDS)


def _copy(source: str, destination: str) -> None:
    """Copy a file or folder from a URI to a task's local output path (fsspec), e.g. the best
    trial's model; KFP uploads (or, on Vertex, gcsfuse writes) the local path to its URI.
    Under the emulator cloud URIs are folders of the emulation root, like every runtime read."""
    from mlcompile.runtime.emulated_storage import mapped

    source, destination = (str(mapped(uri) or uri) for uri in (source, destination))
    if "://" not in source and "://" not in destination:  # both local (or mounted) paths
        import shutil

        if os.path.isdir(source):
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
            shutil.copy2(source, destination)
        return
    import fsspec  # with gcsfs / s3fs in the runtime image

    source_fs, source_path = fsspec.core.url_to_fs(source)
    target_fs, target_path = fsspec.core.url_to_fs(destination)
    if source_fs.isdir(source_path):
        for file in source_fs.find(source_path):
            relative = file[len(source_path.rstrip("/")) + 1 :]
            target_fs.makedirs(os.path.dirname(f"{target_path}/{relative}"), exist_ok=True)
            with source_fs.open(file, "rb") as reader, target_fs.open(f"{target_path}/{relative}", "wb") as writer:
                writer.write(reader.read())
    else:
        target_fs.makedirs(os.path.dirname(target_path) or ".", exist_ok=True)
        with source_fs.open(source_path, "rb") as reader, target_fs.open(target_path, "wb") as writer:
            writer.write(reader.read())


def _write_metrics(outputs: dict[str, str], metrics: dict[str, float]) -> None:
    if "metrics" in outputs:
        path = outputs["metrics"]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, sort_keys=True)


# ---------------------------------------------------------------------- vertex


def _vertex(config: dict[str, Any], job: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> None:
    from google.cloud.aiplatform_v1 import types as gca
    from google.cloud.aiplatform_v1.services.job_service import JobServiceClient
    from google.protobuf import json_format

    platform = config["platform"]
    parent = f"projects/{platform['project']}/locations/{platform['region']}"
    from mlcompile.runtime.online.vertex import service_options

    endpoint = os.environ.get(ENV_VERTEX_API_ENDPOINT) or f"{platform['region']}-aiplatform.googleapis.com"
    options = service_options(endpoint)
    client = JobServiceClient(**options)

    def secret(name: str) -> str:
        """MLCOMPILE_SECRET_<NAME> of the task (a Secret Manager locator the build wrote, or
        a value), else Secret Manager's latest version in the profile's project."""
        from mlcompile.runtime.contract import env_name, secret_manager_locator
        from mlcompile.runtime.secrets import fetch, resolve

        if env_name(name) in os.environ:
            return resolve("secret://" + name)
        return fetch(secret_manager_locator(platform["project"], name), name=name)

    body = json.loads(json.dumps(substitute(job["body"], inputs, outputs, secret)).replace(PIPELINE_JOB_ID, uuid.uuid4().hex))
    if job["kind"] == "vertex.upload_model_request":
        _vertex_register(config, body, inputs, outputs, endpoint)
        return
    done = {"JOB_STATE_SUCCEEDED": "succeeded"}
    failed = {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
    if job["kind"] == "vertex.custom_job":
        created = client.create_custom_job(parent=parent, custom_job=gca.CustomJob.wrap(json_format.ParseDict(body, gca.CustomJob.pb()())))
        _created(lambda: client.cancel_custom_job(name=created.name))

        def poll() -> str | None:
            state = client.get_custom_job(name=created.name).state.name
            return done.get(state) or (f"ended {state}" if state in failed else None)

        _wait(poll, lambda: client.cancel_custom_job(name=created.name), job.get("timeout_seconds"), created.name)
        return
    hpt = gca.HyperparameterTuningJob.wrap(json_format.ParseDict(body, gca.HyperparameterTuningJob.pb()()))
    created = client.create_hyperparameter_tuning_job(parent=parent, hyperparameter_tuning_job=hpt)
    _created(lambda: client.cancel_hyperparameter_tuning_job(name=created.name))
    final: dict[str, Any] = {}

    def poll_tuning() -> str | None:
        current = client.get_hyperparameter_tuning_job(name=created.name)
        final["job"] = current
        state = current.state.name
        return done.get(state) or (f"ended {state}" if state in failed else None)

    _wait(poll_tuning, lambda: client.cancel_hyperparameter_tuning_job(name=created.name), job.get("timeout_seconds"), created.name)
    study = hpt.study_spec.metrics[0]
    maximize = study.goal.name == "MAXIMIZE"
    trials = [t for t in final["job"].trials if t.final_measurement.metrics]
    if not trials:
        raise LaunchFailed(f"{created.name}: no trial reported {study.metric_id}")

    def value(trial: Any) -> float:
        return next(m.value for m in trial.final_measurement.metrics if m.metric_id == study.metric_id)

    best = (max if maximize else min)(trials, key=value)
    print(f"[mlcompile.launch] best trial {best.id}: {study.metric_id} = {value(best)}", flush=True)
    base = hpt.trial_job_spec.base_output_directory.output_uri_prefix.rstrip("/")
    if "model" in outputs:
        _copy(f"{base}/{best.id}/model", outputs["model"])  # AIP_MODEL_DIR of that trial
    # a study measures one metric; the trial's own metrics file has the secondary ones
    metrics = _read_metrics(f"{base}/{best.id}/{TRIAL_METRICS_FILE}")
    _write_metrics(outputs, {**metrics, **{m.metric_id: m.value for m in best.final_measurement.metrics}})


def _read_metrics(uri: str) -> dict[str, float]:
    """The numbers of a trial's metrics file ({} when the trial wrote none)."""
    import fsspec

    from mlcompile.runtime.emulated_storage import mapped

    try:
        with fsspec.open(str(mapped(uri) or uri), "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} if isinstance(data, dict) else {}


def _vertex_register(config: dict[str, Any], body: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str], endpoint: str) -> None:
    """Register the model version in the Vertex AI Model Registry: the runtime's register step
    with the profile's registry (the same one evaluate, batch scoring, monitoring and
    deploy-online read), uploading from the build's request (serving container, labels) plus
    this run's lineage labels; the task's google.VertexModel output names the version."""
    from mlcompile.runtime.io import DataError
    from mlcompile.runtime.registry import register

    model = {**body["model"], "labels": {**(body["model"].get("labels") or {}), **lineage.run_labels(config)}}
    try:
        result = register({**config, "platform_job": {**config["platform_job"], "body": {**body, "model": model}}}, inputs, outputs)
    except DataError as exc:
        raise LaunchFailed(str(exc)) from exc
    if EXECUTOR_OUTPUT in outputs:
        name = f"{result['location']}/models/{result['model']}"
        lineage.write_vertex_model(outputs[EXECUTOR_OUTPUT], VERTEX_MODEL, name, result["version"], endpoint)


# ---------------------------------------------------------------------- kubeflow

_KINDS = {"kubeflow.pytorch_job": ("kubeflow.org", "v1", "pytorchjobs"), "katib.experiment": ("kubeflow.org", "v1beta1", "experiments")}


def _kubeflow(config: dict[str, Any], job: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    api = k8s.CustomObjectsApi()

    def no_secret(name: str) -> str:
        raise LaunchFailed(f"secret {name}: on Kubernetes secrets are secretKeyRef entries, not placeholders")

    manifest = substitute(job["manifest"], inputs, outputs, no_secret)
    group, version, plural = _KINDS[job["kind"]]
    namespace = manifest["metadata"]["namespace"]
    name = f"{manifest['metadata']['name']}-{uuid.uuid4().hex[:8]}"[:63]
    manifest["metadata"]["name"] = name
    if os.environ.get(ENV_POD_NAME) and os.environ.get(ENV_POD_UID):
        # owned by the launcher's pod: deleting the run's pods garbage-collects the job
        owner = {"apiVersion": "v1", "kind": "Pod", "name": os.environ[ENV_POD_NAME], "uid": os.environ[ENV_POD_UID]}
        manifest["metadata"]["ownerReferences"] = [owner]
    api.create_namespaced_custom_object(group, version, namespace, plural, manifest)
    _created(lambda: api.delete_namespaced_custom_object(group, version, namespace, plural, name))
    current: dict[str, Any] = {}

    def poll() -> str | None:
        current.update(api.get_namespaced_custom_object(group, version, namespace, plural, name))
        for condition in (current.get("status") or {}).get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") == "Succeeded":
                return "succeeded"
            if condition.get("type") == "Failed":
                return f"failed: {condition.get('message') or condition.get('reason') or ''}"
        return None

    def cancel() -> None:
        api.delete_namespaced_custom_object(group, version, namespace, plural, name)

    _wait(poll, cancel, job.get("timeout_seconds"), f"{plural}/{name}")
    if job["kind"] == "katib.experiment":
        optimal = (current.get("status") or {}).get("currentOptimalTrial") or {}
        best = optimal.get("bestTrialName")
        if not best:
            raise LaunchFailed(f"experiments/{name}: no optimal trial")
        metrics = {m["name"]: float(m.get("latest", m.get("max", 0))) for m in (optimal.get("observation") or {}).get("metrics", [])}
        print(f"[mlcompile.launch] best trial {best}: {metrics}", flush=True)
        if "model" in outputs:
            _copy(f"{uri_of(outputs['model'])}/trials/{best}", outputs["model"])
        _write_metrics(outputs, metrics)
        return
    # the job wrote its outputs to their URIs; KFP uploads the task's local output paths
    # after the task, so they get the same content first
    for path in outputs.values():
        if uri_of(path) != path:
            _copy(uri_of(path), path)


# ---------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlcompile.runtime.launch")
    parser.add_argument("step")
    parser.add_argument("--config", required=True)
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--output", action="append", default=[])
    parser.add_argument("--pipeline-run", default=None, help="the pipeline run of this task (lineage)")
    parser.add_argument("--executor-output", default=None, help="where to write the task's ExecutorOutput (artifact metadata)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    config = json.loads(args.config)
    inputs = dict(v.split("=", 1) for v in args.input)
    outputs = dict(v.split("=", 1) for v in args.output)
    if args.pipeline_run:
        os.environ[lineage.ENV_PIPELINE_RUN] = args.pipeline_run
    if args.executor_output:
        outputs[EXECUTOR_OUTPUT] = args.executor_output
    job = config.get("platform_job")
    if not job:
        parser.error("the config has no platform_job")
    from mlcompile.runtime.secrets import SecretUnavailable

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if job["kind"].startswith("vertex."):
            _vertex(config, job, inputs, outputs)
        elif job["kind"] in _KINDS:
            _kubeflow(config, job, inputs, outputs)
        else:
            raise LaunchFailed(f"unknown platform job kind {job['kind']!r}")
    except LaunchFailed as exc:
        print(f"error: {args.step}: {exc}", file=sys.stderr, flush=True)
        return 1
    except SecretUnavailable as exc:  # its message names the secret, never a value
        print(f"error: {args.step}: {exc}", file=sys.stderr, flush=True)
        return 1
    except Terminated:
        print(f"error: {args.step}: terminated (the run was cancelled): stopping the {job['kind']} it launched", file=sys.stderr, flush=True)
        _clean_up()
        return 128 + signal.SIGTERM
    finally:
        _cleanups.clear()
        signal.signal(signal.SIGTERM, previous)
    print(f"[mlcompile.launch] {args.step}: {job['kind']} succeeded", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

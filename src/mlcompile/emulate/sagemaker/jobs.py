"""Processing and training jobs as SageMaker runs them, on this machine.

Each job gets a folder standing for its container's `/opt/ml` (JOB/opt/ml): SageMaker copies
the inputs there before the container starts and uploads the outputs after it ends, and so does
this module, from and to the emulated S3 (folders under the emulation root, see storage.py).
The container's command line and environment name `/opt/ml/...`; they are rewritten to the
job's folder, as the Kubeflow emulator rewrites KFP's `/gcs/` mount (no root needed).

    processing: /opt/ml/processing/<LocalPath>  inputs copied in, outputs uploaded (EndOfJob)
    training:   /opt/ml/input/data/<channel>/   every channel's objects
                /opt/ml/input/config/hyperparameters.json   (every value a string)
                /opt/ml/input/config/resourceconfig.json    (current_host, hosts)
                /opt/ml/input/config/inputdataconfig.json
                /opt/ml/model/  -> S3OutputPath/<job>/output/model.tar.gz
                /opt/ml/output/failure  -> the job's FailureReason

A training container with no ContainerEntrypoint runs as `docker run IMAGE train` does: the
image's entrypoint (from emulate.yaml) with the argument `train`. Metrics come from the
container's log through the MetricDefinitions' regexes (the last match of each), as
CloudWatch Logs gives them to SageMaker."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile.emulate.containers import Images, UnmappedImage, run_container
from mlcompile.runtime import emulated_storage as storage

CONTAINER_ROOT = "/opt/ml"
_CONTAINER_PATH = re.compile(r"(?<![\w./-])/opt/ml(?=/|$)")
JOB_TIMEOUT_DEFAULT = 86400.0


class JobFailed(Exception):
    """The job ended Failed; the message is its FailureReason."""

    def __init__(self, reason: str, log: Path | None = None) -> None:
        super().__init__(reason)
        self.log = log


@dataclass
class JobContext:
    """What every job of an emulated account shares."""

    images: Images
    root: Path  # the emulation root (s3/ holds the buckets)
    work: Path  # job folders and logs
    env: Mapping[str, str] = field(default_factory=dict)  # every container's environment (service endpoints)
    region: str = "us-east-1"
    account: str = "123456789012"


@dataclass
class JobResult:
    name: str
    log: Path
    description: dict[str, Any]  # what Describe*Job answers: a step's properties
    folder: Path  # the job's /opt/ml
    metrics: dict[str, float] = field(default_factory=dict)


class Container:
    """One container's `/opt/ml`, as a local folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.opt_ml = folder / "opt" / "ml"
        self.opt_ml.mkdir(parents=True, exist_ok=True)

    def local(self, container_path: str) -> Path:
        return Path(self.rewrite(container_path))

    def rewrite(self, text: str) -> str:
        """`text` with every `/opt/ml` path in it pointing into this folder."""
        return _CONTAINER_PATH.sub(str(self.opt_ml).replace("\\", "\\\\"), text)


def download(uri: str, destination: Path, root: Path) -> None:
    """Copy an S3 object, or every object under a prefix, into `destination` (an S3Prefix input)."""
    source = storage.local_path(uri, root)
    destination.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copyfile(source, destination / source.name)
    elif source.is_dir() and any(source.iterdir()):
        shutil.copytree(source, destination, dirs_exist_ok=True)
    else:
        raise JobFailed(f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source')


def upload(folder: Path, uri: str, root: Path) -> None:
    """Every file under `folder` to the S3 prefix `uri` (an EndOfJob output)."""
    destination = storage.local_path(uri, root)
    if destination.is_file():
        destination.unlink()
    destination.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():
        shutil.copytree(folder, destination, dirs_exist_ok=True)


def _run(
    context: JobContext, image: str, entrypoint: list[str], arguments: list[str], env: Mapping[str, str], container: Container, log: Path, timeout: float
) -> int:
    line = [container.rewrite(part) for part in arguments]
    full_env = {
        **context.env,
        storage.EMULATE_ROOT_ENV: str(context.root),
        "AWS_REGION": context.region,
        "AWS_DEFAULT_REGION": context.region,
        **{key: container.rewrite(str(value)) for key, value in env.items()},
    }
    try:
        return run_container(context.images, image, [container.rewrite(part) for part in entrypoint], line, full_env, container.folder, log, timeout=timeout)
    except UnmappedImage as exc:
        raise JobFailed(str(exc)) from None


def run_processing(context: JobContext, name: str, arguments: Mapping[str, Any]) -> JobResult:
    """A CreateProcessingJob request (its values resolved), run to the end."""
    folder = context.work / "jobs" / name
    container = Container(folder)
    log = folder / "log.txt"
    for item in arguments.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if s3 is None:
            raise JobFailed(f"processing input {item.get('InputName')}: only S3Input is emulated")
        download(s3["S3Uri"], container.local(s3["LocalPath"]), context.root)
    app = arguments["AppSpecification"]
    stopping = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", JOB_TIMEOUT_DEFAULT)
    code = _run(
        context,
        app["ImageUri"],
        list(app.get("ContainerEntrypoint", [])),
        list(app.get("ContainerArguments", [])),
        arguments.get("Environment", {}),
        container,
        log,
        stopping,
    )
    description = {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:{context.region}:{context.account}:processing-job/{name}",
        "ProcessingInputs": list(arguments.get("ProcessingInputs", [])),
        "ProcessingOutputConfig": arguments.get("ProcessingOutputConfig", {"Outputs": []}),
        "AppSpecification": app,
    }
    if code != 0:
        raise JobFailed(_failure(container, code, log, "AlgorithmError"), log)
    for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
        s3 = item["S3Output"]
        upload(container.local(s3["LocalPath"]), s3["S3Uri"], context.root)
    description["ProcessingJobStatus"] = "Completed"
    return JobResult(name, log, description, container.opt_ml)


def run_training(context: JobContext, name: str, arguments: Mapping[str, Any]) -> JobResult:
    """A CreateTrainingJob request (its values resolved), run to the end: one container per
    instance (hosts algo-1 … algo-N), the model of algo-1 packed and uploaded."""
    resources = arguments.get("ResourceConfig") or arguments.get("HyperParameterTuningResourceConfig") or {}
    hosts = [f"algo-{index + 1}" for index in range(int(resources.get("InstanceCount", 1)))]
    folder = context.work / "jobs" / name
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        codes = list(pool.map(lambda host: _train_on(context, name, arguments, folder / host, host, hosts), hosts))
    first = Container(folder / hosts[0])
    log = folder / hosts[0] / "log.txt"
    algorithm = arguments["AlgorithmSpecification"]
    text = "\n".join((folder / host / "log.txt").read_text(errors="replace") for host in hosts if (folder / host / "log.txt").is_file())
    metrics = metrics_from_log(text, algorithm.get("MetricDefinitions", []))
    failed = next((host for host, code in zip(hosts, codes) if code != 0), None)
    if failed is not None:
        raise JobFailed(
            _failure(Container(folder / failed), codes[hosts.index(failed)], folder / failed / "log.txt", "AlgorithmError"), folder / failed / "log.txt"
        )
    output = str(arguments["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
    artifact = f"{output}/{name}/output/model.tar.gz"
    pack(first.opt_ml / "model", storage.local_path(artifact, context.root))
    description = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{context.region}:{context.account}:training-job/{name}",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": artifact},
        "HyperParameters": dict(arguments.get("HyperParameters", {})),
        "OutputDataConfig": dict(arguments["OutputDataConfig"]),
        "FinalMetricDataList": [{"MetricName": key, "Value": value} for key, value in sorted(metrics.items())],
    }
    return JobResult(name, log, description, first.opt_ml, metrics)


def _train_on(context: JobContext, name: str, arguments: Mapping[str, Any], folder: Path, host: str, hosts: list[str]) -> int:
    container = Container(folder)
    channels = {}
    for channel in arguments.get("InputDataConfig", []):
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise JobFailed(f"channel {channel['ChannelName']}: only S3DataSource is emulated")
        download(source["S3Uri"], container.opt_ml / "input" / "data" / channel["ChannelName"], context.root)
        channels[channel["ChannelName"]] = {
            "TrainingInputMode": arguments["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    config = container.opt_ml / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    hyperparameters = {str(key): str(value) for key, value in (arguments.get("HyperParameters") or {}).items()}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": host,
                "current_instance_type": arguments.get("ResourceConfig", {}).get("InstanceType", "local"),
                "hosts": hosts,
                "network_interface_name": "eth0",
            }
        )
    )
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    for place in ("model", "output/data"):
        (container.opt_ml / place).mkdir(parents=True, exist_ok=True)
    algorithm = arguments["AlgorithmSpecification"]
    image = algorithm.get("TrainingImage") or ""
    entrypoint = list(algorithm.get("ContainerEntrypoint", []))
    args = list(algorithm.get("ContainerArguments", [])) if entrypoint else ["train"]  # `docker run IMAGE train`
    env = {**toolkit_env(name, host, hosts, channels, hyperparameters), **dict(arguments.get("Environment") or {})}
    stopping = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", JOB_TIMEOUT_DEFAULT)
    return _run(context, image, entrypoint, args, env, container, folder / "log.txt", stopping)


def toolkit_env(job: str, host: str, hosts: list[str], channels: Mapping[str, Any], hyperparameters: Mapping[str, str]) -> dict[str, str]:
    """What SageMaker and its training toolkit set in a training container (the paths as the
    container sees them; they are rewritten to the job's folder like every other path)."""
    env = {
        "TRAINING_JOB_NAME": job,
        "SM_MODEL_DIR": f"{CONTAINER_ROOT}/model",
        "SM_INPUT_DIR": f"{CONTAINER_ROOT}/input",
        "SM_INPUT_CONFIG_DIR": f"{CONTAINER_ROOT}/input/config",
        "SM_OUTPUT_DIR": f"{CONTAINER_ROOT}/output",
        "SM_OUTPUT_DATA_DIR": f"{CONTAINER_ROOT}/output/data",
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(dict(hyperparameters)),
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NUM_GPUS": "0",
    }
    env.update({f"SM_CHANNEL_{channel.upper()}": f"{CONTAINER_ROOT}/input/data/{channel}" for channel in channels})
    return env


def metrics_from_log(text: str, definitions: list[Mapping[str, str]]) -> dict[str, float]:
    """Each metric's last value in the log, by its definition's regex (first group)."""
    found: dict[str, float] = {}
    for definition in definitions:
        for match in re.finditer(definition["Regex"], text):
            try:
                found[definition["Name"]] = float(match.group(1))
            except (IndexError, TypeError, ValueError):
                continue
    return found


def pack(folder: Path, destination: Path) -> None:
    """model.tar.gz of the folder's contents (the archive's members are relative: `./model.json`)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, "w:gz") as archive:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)


def _failure(container: Container, code: int, log: Path, kind: str) -> str:
    failure = container.opt_ml / "output" / "failure"
    if failure.is_file() and failure.read_text(errors="replace").strip():
        return f"{kind}: {failure.read_text(errors='replace').strip()[:1024]}"
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    tail = [line for line in lines if not line.startswith(("$ ", "[mlcompile.runtime]"))][-2:]
    return f"{kind}: the container exited with status {code}" + (f": {' | '.join(tail)}" if tail else "")

"""The platform API every target implements, built-in or third-party (`Platform`,
`PlatformBase`), and the helpers targets share."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from mlcompile.diagnostics import Diagnostic
from mlcompile.limits import Limit

if TYPE_CHECKING:  # annotations only: validating a spec needs no plan classes
    from mlcompile.plan.extension import PlanExtension
    from mlcompile.plan.nodes import OnlineEndpoint, Origin, Pipeline, Plan

T = TypeVar("T")
# ASCII letters, digits, '.', '_', '-' in '/'-separated parts: no absolute path, no '\\', no
# NUL or newline (checked with fullmatch: `$` alone would accept a trailing newline).
_SAFE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
MAX_PATH_PART = 255  # bytes in one file name on every common filesystem


@dataclass(frozen=True)
class OutputFile:
    """One file of a build: a relative POSIX path inside the profile's folder, the format it
    is in (manifest `kind`, e.g. `kfp.pipeline_spec`), and its bytes."""

    path: str
    kind: str
    content: bytes

    def __post_init__(self) -> None:
        if not is_safe_relative_path(self.path):
            raise ValueError(f"unsafe output path {self.path!r}: relative, no '..', letters, digits, '.', '_', '-'")


def is_safe_relative_path(path: str) -> bool:
    """A relative POSIX path that stays where it is put: ASCII name characters only, no
    empty, '.' or '..' part, each part short enough for any filesystem."""
    parts = path.split("/")
    return bool(_SAFE_PATH.fullmatch(path)) and all(part not in (".", "..") and len(part) <= MAX_PATH_PART for part in parts)


# ---------------------------------------------------------------------------- the platform API

# Capabilities a platform may declare (`Platform.capabilities`). The core refuses, once and for
# every platform, what a plan asks of a capability its platform does not declare
# (`capability_refusals`), so that no target writes the same refusal again.
GRID_OVER_FLOAT_RANGE = "tuning.grid.float_range"  # a grid search enumerates a float range (it needs a step)
CAPABILITIES: frozenset[str] = frozenset({GRID_OVER_FLOAT_RANGE})


PriceModel = Literal["list", "self_managed", "no_charge", "unknown"]


@dataclass(frozen=True)
class Pricing:
    """How cost.json prices a platform's machines: `list` prices from `Platform.price_table()`,
    `self_managed` (your own cluster: resources, no price), `no_charge` (this machine), or
    `unknown` (a figure nobody can state; the default for a third-party platform).
    `accelerators_billed_apart`: a machine's accelerators are billed on top of the machine
    (Vertex AI), priced under the table's `accelerators` by their platform name.
    `note`: the closing line of explain's cost section."""

    model: PriceModel = "unknown"
    accelerators_billed_apart: bool = False
    note: str | None = None


@runtime_checkable
class Platform(Protocol):
    """A platform backend: the only place the core learns about a platform. Subclass
    `PlatformBase`, which gives every member below a default, and override what differs.

    `check` and `render` are the two every platform writes; `render` is pure and offline
    (same plan, same bytes). The other members declare what the core asks of a platform:
    how a profile's settings are checked, what the platform can do, where its runtime finds
    secrets, how big its files may be, what its machines cost, how it is emulated."""

    name: ClassVar[str]  # the value of `platform:` in a profile
    title: ClassVar[str]  # how messages and `explain` name it ("Vertex AI")
    # pip extra that installs what the target imports (None: nothing beyond the core)
    extra: ClassVar[str | None]
    # modules the target imports when it renders, checked without importing them
    requires: ClassVar[tuple[str, ...]]
    # the pydantic model of the profile's settings block (`<name>:` for a built-in platform,
    # `settings:` for a third-party one); None: the platform takes no settings
    settings_model: ClassVar[type[Any] | None]
    settings_required: ClassVar[bool]  # a profile must carry the settings block
    needs_runtime_image: ClassVar[bool]  # a profile must name images.runtime
    runs_on_this_machine: ClassVar[bool]  # `mlcompile run`: reads file:// URIs, costs nothing
    capabilities: ClassVar[frozenset[str]]  # of CAPABILITIES
    # the machine catalog section resources are resolved in (mlcompile.catalog: "kubeflow" for
    # Kubernetes node selectors, "vertex", "sagemaker", "azureml"); None: no catalogued machines
    machine_catalog: ClassVar[str | None]
    size_limits: ClassVar[tuple[Limit, ...]]
    pricing: ClassVar[Pricing]
    # "module:function" running `mlcompile run --emulate` for the platform's builds; None: not emulated
    emulator: ClassVar[str | None]

    def check(self, plan: Plan) -> list[Diagnostic]:
        """What this platform cannot do of the plan, each at the spec location it came from."""
        ...

    def render(self, plan: Plan) -> list[OutputFile]:
        """The platform's native files for the plan."""
        ...

    def extend_plan(self, plan: Plan) -> PlanExtension:
        """What the platform adds to the plan beyond the spec's pipelines (new-data sensors,
        feature materialisation, the deploy pipeline an approval starts): lowering adds it,
        so that cost, explain, graph and diff see every step a build runs."""
        ...

    def check_profile(self, system: Any, profile: Any, report: Callable[..., None]) -> None:
        """Rules that depend on where the spec is built (e.g. which URIs the platform's jobs
        can read): `report(path, message, hint=None, severity="error")` at a spec path."""
        ...

    def secret_locator(self, settings: Mapping[str, Any], name: str) -> str | None:
        """Where the runtime reads secret NAME on this platform (None: the platform injects it)."""
        ...

    def resolve_machine(self, settings: Mapping[str, Any], *, accelerator: str | None, count: int, cpu: float, memory_gib: float) -> Any:
        """The machine a resource request runs on: a `mlcompile.catalog.Resolution` (the
        machine and warnings about it), None when the platform has no catalogued machines;
        raise `mlcompile.catalog.CatalogError` for a request the platform cannot meet."""
        ...

    def price_table(self) -> Any:
        """The `mlcompile.catalog.prices.PlatformPrices` of list prices (None: no table);
        by default the machine catalog's price list under the platform's name."""
        ...

    def billed_deployments(self, strategy: str | None) -> int:
        """Deployments an online endpoint keeps running under a rollout `strategy`, each billed."""
        ...


class PlatformBase:
    """The defaults of every `Platform` member: a CPU-only platform with no settings model,
    no catalogued machines, no price table, no size limits and no emulator. A platform (built
    in or third-party) subclasses it, sets `name` and writes `render`, and overrides only
    what it needs; register the class under the `mlcompile.targets` entry-point group.

        class ToyPlatform(PlatformBase):
            name = "toy"
            settings_model = ToySettings  # a pydantic model: the profile's `settings:` is checked by it

            def render(self, plan: Plan) -> list[OutputFile]:
                return [OutputFile("toy.json", "toy.steps", json_bytes(...))]
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""  # default: the name
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    settings_model: ClassVar[type[Any] | None] = None
    settings_required: ClassVar[bool] = False
    needs_runtime_image: ClassVar[bool] = True
    runs_on_this_machine: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[str]] = frozenset()
    machine_catalog: ClassVar[str | None] = None
    size_limits: ClassVar[tuple[Limit, ...]] = ()
    pricing: ClassVar[Pricing] = Pricing()
    emulator: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("title") and "name" in cls.__dict__:
            cls.title = cls.name
        unknown = cls.capabilities - CAPABILITIES
        if unknown:
            raise TypeError(f"{cls.__name__} declares unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")

    def check(self, plan: Plan) -> list[Diagnostic]:
        return []

    def render(self, plan: Plan) -> list[OutputFile]:
        raise NotImplementedError(f"platform {self.name} renders nothing")

    def extend_plan(self, plan: Plan) -> PlanExtension:
        from mlcompile.plan.extension import PlanExtension

        return PlanExtension()

    def check_profile(self, system: Any, profile: Any, report: Callable[..., None]) -> None:
        return None

    def secret_locator(self, settings: Mapping[str, Any], name: str) -> str | None:
        return None

    def resolve_machine(self, settings: Mapping[str, Any], *, accelerator: str | None, count: int, cpu: float, memory_gib: float) -> Any:
        # the catalog's entries of section `machine_catalog` (Kubernetes: of the profile's cluster flavour)
        if self.machine_catalog is None:
            return None
        from mlcompile.catalog import resolve_machine

        cluster = str(settings.get("cluster", "generic"))
        return resolve_machine(self.machine_catalog, accelerator=accelerator, count=count, cpu=cpu, memory_gib=memory_gib, cluster=cluster)

    def price_table(self) -> Any:
        # list prices: the catalog's under the platform's name (catalog/prices.yaml), if any
        if self.pricing.model != "list":
            return None
        from mlcompile.catalog.prices import prices

        return prices().get(self.name)

    def billed_deployments(self, strategy: str | None) -> int:
        return 1


def capability_refusals(platform: Platform, plan: Plan) -> list[Diagnostic]:
    """What the plan asks of a capability the platform does not declare, refused at the spec."""
    problems: list[Diagnostic] = []
    tuning = plan.tuning
    if tuning is not None and tuning.algorithm == "grid" and GRID_OVER_FLOAT_RANGE not in platform.capabilities:
        for p in tuning.params:
            if p.type == "float":
                problems.append(
                    unsupported(
                        tuning.origin.below("params", p.name),
                        platform.name,
                        f"{platform.title} grid search cannot enumerate a float range, and '{p.name}' is one",
                        "use algorithm random or bayesian, or make the parameter categorical",
                    )
                )
    return problems


def unsupported(origin: Origin, target: str, message: str, hint: str | None = None) -> Diagnostic:
    """A target's refusal of something the spec asks for, located at the spec."""
    return Diagnostic(origin.file, origin.line, origin.col, "error", origin.path, f"{message} (target {target})", hint)


def json_bytes(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def resource_labels(plan: Plan, *, max_value_length: int | None = None) -> dict[str, str]:
    """The labels/tags every cloud resource carries: the spec's `metadata.labels` plus
    lineage (system, spec sha256, git commit). Platforms that cap label values (GCP and
    Kubernetes: 63 characters) pass `max_value_length`; the sha256 prefix stays unique."""
    labels = dict(plan.labels)
    labels["mlcompile-system"] = plan.system
    labels["mlcompile-spec-sha256"] = plan.lineage.spec_sha256
    if plan.lineage.git_commit:
        labels["mlcompile-git-commit"] = plan.lineage.git_commit
    if max_value_length is not None:
        labels = {key: value[:max_value_length] for key, value in labels.items()}
    return dict(sorted(labels.items()))


@dataclass(frozen=True)
class DeployAction:
    """One change `deploy` makes (or, with --dry-run, would make) on the platform.
    `live` fingerprints what deploy read of the resource on the platform before deciding
    (`live_fingerprint`): a saved plan is applied only while every fingerprint still holds."""

    resource: str  # e.g. "pipeline churn-prediction-training"
    action: str  # create | update | unchanged | delete | deferred | manual
    detail: str = ""
    live: str = ""  # "absent", "sha256:…", or "" (a target that does not fingerprint)


ABSENT = "absent"


def live_fingerprint(state: Any) -> str:
    """A short stable hash of the live state deploy compared a resource on — exactly the
    fields its comparison reads, so that a run or a status change of the resource does not
    count, while any change that could alter what deploy does does. None: the resource is absent."""
    if state is None:
        return ABSENT
    text = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


class DeployFailed(Exception):
    """The platform refused or failed a deployment (exit status 1, not a user error).
    `applied` lists what had been done before the failure and `not_applied` the resources of
    the build that were not (None when the target cannot tell), so that the summary says
    exactly what was and was not applied."""

    def __init__(self, message: str, applied: Sequence[DeployAction] = (), not_applied: Sequence[str] | None = None):
        super().__init__(message)
        self.applied = list(applied)
        self.not_applied = None if not_applied is None else list(not_applied)


def not_applied(planned: Sequence[str], applied: Sequence[DeployAction]) -> list[str]:
    """The planned resources (in order) that no action applied or found in place (a resource
    whose old definition was deleted but whose new one was not created is not applied)."""
    done = {action.resource for action in applied if action.action != "delete"}
    return [resource for resource in planned if resource not in done]


# Deploy's retry and timeout knobs (environment): attempts per call, the first backoff delay
# and its cap (seconds; doubled per attempt, jittered, at least the server's Retry-After up to
# the cap), and the read timeout of every request a platform client sends.
ATTEMPTS_ENV = "MLCOMPILE_DEPLOY_ATTEMPTS"
BACKOFF_ENV = "MLCOMPILE_DEPLOY_BACKOFF"
MAX_BACKOFF_ENV = "MLCOMPILE_DEPLOY_MAX_BACKOFF"
TIMEOUT_ENV = "MLCOMPILE_DEPLOY_TIMEOUT"


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 60.0  # seconds a platform may take to answer one request

    @classmethod
    def from_env(cls) -> RetrySettings:
        import os

        def number(name: str, default: float) -> float:
            text = os.environ.get(name)
            try:
                return float(text) if text else default
            except ValueError:
                from mlcompile.errors import UsageError

                raise UsageError(f"{name}={text!r} is not a number") from None

        defaults = cls()
        return cls(
            attempts=max(1, int(number(ATTEMPTS_ENV, defaults.attempts))),
            first_delay=max(0.0, number(BACKOFF_ENV, defaults.first_delay)),
            max_delay=max(0.0, number(MAX_BACKOFF_ENV, defaults.max_delay)),
            timeout=max(0.1, number(TIMEOUT_ENV, defaults.timeout)),
        )


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# what the SDKs raise for a connection refused, dropped or timed out (urllib3, requests,
# botocore, azure-core, http.client), matched by name: the SDKs are optional imports
_TRANSIENT_TYPES = frozenset({
    "ProtocolError", "MaxRetryError", "ReadTimeoutError", "ConnectTimeoutError", "NewConnectionError",
    "Timeout", "ReadTimeout", "ConnectTimeout", "ChunkedEncodingError",
    "EndpointConnectionError", "ConnectionClosedError",
    "ServiceRequestError", "ServiceResponseError", "ServiceRequestTimeoutError", "ServiceResponseTimeoutError",
    "RemoteDisconnected", "IncompleteRead", "ConnectionError",
})  # fmt: skip
_THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"})


def _status_of(exc: BaseException) -> int | None:
    for attribute in ("status", "status_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    response = getattr(exc, "response", None)
    status_code = getattr(response, "status_code", None)
    if isinstance(status_code, int):
        return status_code
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: throttling, a server error, a timeout or a dropped connection
    (also when an SDK wraps one of those in its own exception)."""
    from mlcompile.targets.deadline import deadline_passed

    if deadline_passed():
        return False  # out of time: nothing is worth another attempt
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        status = _status_of(current)
        if status is not None and status in TRANSIENT_STATUSES:
            return True
        response = getattr(current, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") in _THROTTLING_CODES:
            return True
        if status is not None:
            return False  # the platform answered, and refused
        if isinstance(current, (ConnectionError, TimeoutError)) or any(t.__name__ in _TRANSIENT_TYPES for t in type(current).__mro__):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (a Retry-After header in seconds), if it said."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if headers is None and isinstance(response, dict):
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders")
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def backoff(attempt: int, exc: BaseException, settings: RetrySettings) -> float:
    """Delay before retry `attempt` + 1: exponential, jittered, at least Retry-After, capped."""
    import random  # only deploys retry: kept out of validate's cold start

    delay = settings.first_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
    asked = retry_after(exc)
    if asked is not None:
        delay = max(delay, asked)
    return min(settings.max_delay, delay)


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int | None = None,
    first_delay: float | None = None,
    max_delay: float | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried on transient failures with capped exponential backoff and jitter
    (defaults: RetrySettings.from_env()). Only for calls that are safe to repeat: reads,
    deletes and PUT-style upserts; a create goes through `create_once`."""
    env = RetrySettings.from_env()
    settings = RetrySettings(
        attempts=env.attempts if attempts is None else attempts,
        first_delay=env.first_delay if first_delay is None else first_delay,
        max_delay=env.max_delay if max_delay is None else max_delay,
        timeout=env.timeout,
    )
    from mlcompile.targets.deadline import call_limit

    for attempt in range(1, settings.attempts + 1):
        try:
            with call_limit(settings.timeout):  # the whole answer, however slowly it arrives
                return call()
        except Exception as exc:
            if attempt == settings.attempts or not transient(exc):
                raise
            sleep(backoff(attempt, exc, settings))
    raise AssertionError("unreachable")


def create_once(create: Callable[[], T], find: Callable[[], T | None], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """A create that is not idempotent (a POST), retried without ever creating twice: after a
    transient failure — which may have reached the platform before the connection dropped or
    timed out — look for the resource first (`find`, itself retried) and retry the create only
    when it is not there."""
    from mlcompile.targets.deadline import call_limit

    settings = RetrySettings.from_env()
    for attempt in range(1, settings.attempts + 1):
        try:
            with call_limit(settings.timeout):
                return create()
        except Exception as exc:
            if not is_transient(exc):
                raise
            found = with_retries(find, sleep=sleep)
            if found is not None:
                return found
            if attempt == settings.attempts:
                raise
            sleep(backoff(attempt, exc, settings))
    raise AssertionError("unreachable")


class RetryingClient:
    """An SDK client whose calls are retried by `with_retries`, except creates (`create_*`,
    `upload_*`: POSTs a blind retry could apply twice), which the caller sends through
    `create_once`."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("create_", "upload_")):
            return attribute
        return lambda *args, **kwargs: with_retries(lambda: attribute(*args, **kwargs))


@runtime_checkable
class Deployable(Protocol):
    """A target that can also submit its build to the platform (`mlcompile deploy`)."""

    def deploy(self, plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
        """Create or update what the build describes; idempotent: deploying the same build
        twice reports every resource `unchanged` the second time. Raise DeployFailed when the
        platform refuses."""
        ...


def deploy_pipeline(plan: Plan, online: OnlineEndpoint) -> Pipeline:
    """With manual approval the training pipeline stops at registration; approving a version
    starts this one (SageMaker: an EventBridge rule; Kubeflow and Vertex AI: the approver
    submits it after moving the `production` alias), which rolls the endpoint to it."""
    from mlcompile.plan.extension import platform_step
    from mlcompile.plan.nodes import Pipeline

    step = platform_step(plan, "deploy-online", "deploy_online", online.origin, params={"endpoint": online.name, "model": plan.registry.model})
    return Pipeline(f"{plan.system}-deploy", f"deploys approved versions of {plan.registry.model} to endpoint {online.name}", (step,))

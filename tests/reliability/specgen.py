"""Generated system specs, and one build of a spec for every installed target (no tests here).

`valid_specs()` is a hypothesis strategy that writes whole specs from scratch — entities,
sources, views with every feature dtype, a scikit-learn or container trainer, resources with
accelerators from the catalog, tuning, gates, registry, online and batch deployment,
monitoring, retraining and per-profile overrides — following every rule of SPEC-v1 §1, so
that they validate and reach every target's check() and render(). A platform may still
refuse a spec (an accelerator it does not offer, a grid search over floats, …): that is a
located diagnostic and exit 2, which the tests accept; an exception never is.

The cloud profiles are the ones of tests/toy_target/profiles; the generated spec reads local
files and gives each cloud profile its own URIs under `overrides.<profile>`, as users do.

Used by tests/reliability/test_fuzz_build.py and bench/fuzz.py (which runs 10,000 of them)."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from mlcompile.build import ProfileSet, compile_system, manifest, resolve_profiles
from mlcompile.catalog import estimators as catalog
from mlcompile.errors import SpecError
from mlcompile.spec.checks import SKLEARN_METRICS

PROFILE_DIR = Path(__file__).resolve().parents[1] / "toy_target" / "profiles"
PROFILE_TEXTS = {p.stem: p.read_text() for p in sorted(PROFILE_DIR.glob("*.yaml"))}
# profile name -> how that platform's data is addressed (base spec: file:// for `local`)
CLOUD_URIS = {
    "gcp-prod": ("gs://acme-ml/data", "bq://acme.sales"),
    "kfp-prod": ("s3://acme-ml/data", None),
    "aws-prod": ("s3://acme-ml/data", None),
    "azure-prod": ("abfss://data@acme.dfs.core.windows.net", None),
}
ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/train:1.4"

LOWER = string.ascii_lowercase
DTYPES = ["int32", "int64", "float32", "float64", "string", "bool", "timestamp"]
NUMERIC = {"int32", "int64", "float32", "float64"}
# accelerators of the catalog: some are on every cloud, some are not (a located refusal)
ACCELERATORS = ["nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-v100", "nvidia-a100-40gb", "nvidia-a100-80gb", "nvidia-h100-80gb", "tpu-v5e"]
ESTIMATORS = [
    "sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.ensemble.RandomForestClassifier",
    "sklearn.linear_model.LogisticRegression", "sklearn.linear_model.Ridge", "xgboost.XGBClassifier",
]  # fmt: skip
CRONS = ["0 3 * * *", "*/15 * * * *", "0 0 1 * *", "30 6 * * 1-5", "0 2 * * 0", "0 * * * *", "5 4 1 1 *", "0 0 1 * 1"]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "Pacific/Chatham", "America/Los_Angeles"]
DURATIONS = ["30s", "90s", "5m", "30m", "1h", "2h", "12h", "1d", "7d", "30d", "365d"]
# printable text as validate accepts it: no surrogates, and none of the control, format
# (soft hyphen, zero-width, bidi) or line/paragraph separators validate refuses in any field
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), max_size=40)


def _word(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    return st.builds(lambda a, b: a + b, st.sampled_from(first), st.text(rest, max_size=max_size - 1))


ITEM_NAME = _word(LOWER + string.digits, LOWER + string.digits + "_-", 12)  # [a-z0-9][a-z0-9_-]*
COLUMN = _word(string.ascii_letters + "_", string.ascii_letters + string.digits + "_", 12)  # identifiers
LABEL_KEY = _word(LOWER, LOWER + string.digits + "_-", 16)
DNS_NAME = st.builds(
    lambda head, middle, tail: head + middle + tail,
    st.sampled_from(LOWER),
    st.text(LOWER + string.digits + "-", min_size=1, max_size=24),
    st.sampled_from(LOWER + string.digits),
)  # 3..26 characters: short enough for every platform's derived names (Azure ML's '<name>-batch')
METRIC = _word(LOWER, LOWER + string.digits + "_", 12)


def _unique(strategy: st.SearchStrategy[str], min_size: int, max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(strategy, min_size=min_size, max_size=max_size, unique=True)


@st.composite
def accelerator(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 2)):  # two in three without: most machines carry none
        return None
    return {"type": draw(st.sampled_from(ACCELERATORS)), "count": draw(st.sampled_from([1, 1, 2, 4, 8]))}


@st.composite
def serving_resources(draw: st.DrawFn) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": draw(st.sampled_from([0.5, 1, 2, 4, 16])), "memory": draw(st.sampled_from(["512Mi", "2Gi", "4Gi", "32Gi"]))}
    if (acc := draw(accelerator())) is not None:
        resources["accelerator"] = acc
    if draw(st.integers(0, 4)) == 0:
        resources["timeout"] = draw(st.sampled_from(["30s", "60s", "5m"]))
    return resources


@st.composite
def training_resources(draw: st.DrawFn) -> dict[str, Any]:
    resources: dict[str, Any] = {
        # mostly what every cloud has; 96 cores and 1Ti now and then (some platforms refuse them)
        "cpu": draw(st.sampled_from([0.5, 1, 2, 4, 8, 16, 32, 1, 2, 4, 96])),
        "memory": draw(st.sampled_from(["512Mi", "1Gi", "7.5Gi", "16Gi", "64Gi", "1Gi", "4Gi", "8Gi", "16Gi", "1Ti"])),
    }
    if (acc := draw(accelerator())) is not None:
        resources["accelerator"] = acc
    for key, values in (("replicas", [1, 1, 2, 4]), ("spot", [False, True]), ("timeout", DURATIONS)):
        if draw(st.booleans()):
            resources[key] = draw(st.sampled_from(values))
    return resources


@st.composite
def search_param(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["float", "int", "categorical"]))
    if kind == "categorical":
        values = st.one_of(st.sampled_from(["adam", "sgd", "log_loss", "ünï"]), st.integers(-5, 500), st.floats(-1, 1), st.booleans())
        return {"type": kind, "values": draw(st.lists(values, min_size=1, max_size=4))}
    scale = draw(st.sampled_from(["linear", "log"]))
    if kind == "int":
        low = draw(st.integers(1 if scale == "log" else -100, 100))
        return {"type": kind, "min": low, "max": low + draw(st.integers(1, 1000)), "scale": scale}
    low = draw(st.floats(1e-6 if scale == "log" else -10.0, 10.0))
    return {"type": kind, "min": low, "max": low + draw(st.floats(0.001, 100.0)), "scale": scale}


def estimator_param_names(estimator: str) -> st.SearchStrategy[str]:
    """Constructor parameters of a catalogued estimator (validate refuses others); any name
    for one the catalog does not list (xgboost here, when it is not installed)."""
    entry = catalog.estimator(estimator)
    return st.sampled_from(sorted(n for n, kind in entry["params"].items() if kind != "required")) if entry else COLUMN


def estimator_metrics(estimator: str) -> list[str]:
    """The short names and some scorer names that score this kind of estimator."""
    entry = catalog.estimator(estimator)
    tasks = catalog.TASK_METRICS[entry["kind"]] if entry else ("classification", "regression", "clustering")
    names = [*SKLEARN_METRICS, "f1_weighted", "neg_log_loss", "neg_mean_squared_error", "neg_max_error", "explained_variance", "adjusted_rand_score"]
    return [n for n in names if catalog.metric(n).task in tasks]  # type: ignore[union-attr]


def readable_bound(metric: str, value: float, bound: str) -> float:
    """A negated loss (neg_*) is ≤ 0: a bound above that is refused as never / always met."""
    known = catalog.metric(metric)
    if known is None or not known.negated:
        return value
    return -abs(value) - (0.001 if bound == "max" else 0.0)


@st.composite
def sklearn_params(draw: st.DrawFn, estimator: str) -> dict[str, Any]:
    value = st.one_of(
        st.integers(-1000, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(), TEXT, st.lists(st.integers(0, 9), max_size=3)
    )
    return draw(st.dictionaries(estimator_param_names(estimator), value, max_size=4))


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """One system spec that follows every rule of SPEC-v1 §1 (see the module docstring)."""
    metadata: dict[str, Any] = {"name": draw(DNS_NAME)}
    if draw(st.booleans()):
        metadata["description"] = draw(TEXT)
    if draw(st.booleans()):
        metadata["owner"] = "team@example.com"
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(LABEL_KEY, st.text(LOWER + string.digits + "-_", max_size=20), max_size=3))

    # ------------------------------------------------------------------ features
    entity_names = draw(_unique(ITEM_NAME, 1, 3))
    entities = [{"name": n, "join_keys": draw(_unique(COLUMN, 1, 2))} for n in entity_names]
    source_names = draw(_unique(ITEM_NAME, 1, 4))
    sources = []
    for name in source_names:
        fmt = draw(st.sampled_from(["csv", "parquet"]))
        sources.append({"name": name, "uri": f"file://data/{name}.{fmt}", "format": fmt, "timestamp_field": draw(COLUMN)})
    views = []
    for name in draw(_unique(ITEM_NAME, 1, 4)):
        view: dict[str, Any] = {
            "name": name,
            "entities": draw(st.lists(st.sampled_from(entity_names), min_size=1, max_size=len(entity_names), unique=True)),
            "source": draw(st.sampled_from(source_names)),
            "ttl": draw(st.sampled_from(DURATIONS)),
            "features": [{"name": f, "dtype": draw(st.sampled_from(DTYPES))} for f in draw(_unique(COLUMN, 1, 5))],
        }
        if draw(st.booleans()):
            view["online"] = draw(st.booleans())
        views.append(view)

    # ------------------------------------------------------------------ training
    # dataset columns are feature names: one column per name (a repeated name is an error)
    candidates: dict[str, tuple[str, str]] = {}
    for view in views:
        for feature in view["features"]:
            candidates.setdefault(feature["name"], (view["name"], feature["dtype"]))
    chosen = draw(st.lists(st.sampled_from(sorted(candidates)), min_size=1, max_size=len(candidates), unique=True))
    refs = [f"{candidates[f][0]}:{f}" for f in chosen]
    numeric_refs = [f"{candidates[f][0]}:{f}" for f in chosen if candidates[f][1] in NUMERIC]
    label_column = draw(COLUMN.filter(lambda c: c not in chosen))
    dataset: dict[str, Any] = {"features": refs, "label": {"source": draw(st.sampled_from(source_names)), "column": label_column}}
    if draw(st.booleans()):
        dataset["split"] = {"test_fraction": draw(st.floats(0.01, 0.99)), "seed": draw(st.integers(0, 2**31))}

    sklearn = draw(st.booleans())
    if sklearn:
        estimator = draw(st.sampled_from(ESTIMATORS))
        trainer: dict[str, Any] = {"sklearn": {"estimator": estimator, "params": draw(sklearn_params(estimator))}}
        metrics = draw(st.lists(st.sampled_from(estimator_metrics(estimator)), min_size=1, max_size=4, unique=True))
    else:
        container: dict[str, Any] = {"image": draw(st.sampled_from(["ghcr.io/acme/train:1", "ghcr.io/acme/train@sha256:" + "a" * 64, ECR_IMAGE]))}
        if draw(st.booleans()):
            container["command"] = draw(st.lists(TEXT, max_size=3))
        if draw(st.booleans()):
            container["args"] = draw(st.lists(TEXT, max_size=3))
        if draw(st.booleans()):
            env_values = st.one_of(st.sampled_from(["fast", "1", "secret://train-token", ""]), TEXT)
            container["env"] = draw(st.dictionaries(COLUMN.filter(lambda k: k.upper() == k), env_values, max_size=3))
        container["predict"] = {"command": ["python", "predict.py"]}  # what serving, batch and monitoring score with
        trainer = {"container": container}
        metrics = draw(_unique(st.one_of(st.sampled_from(SKLEARN_METRICS), METRIC), 1, 4))
    gates = []
    for _ in range(draw(st.integers(0, 3))):
        bound = draw(st.sampled_from(["min", "max", "min_delta_vs_production"]))
        metric = draw(st.sampled_from(metrics))
        gates.append({"metric": metric, bound: readable_bound(metric, draw(st.floats(-1, 1)), bound) if sklearn else draw(st.floats(-1, 1))})
    training: dict[str, Any] = {"dataset": dataset, "trainer": trainer, "evaluation": {"metrics": metrics, "gates": gates}}
    if draw(st.booleans()):
        training["resources"] = draw(training_resources())
    if draw(st.integers(0, 2)) == 0:
        max_trials = draw(st.integers(1, 50))
        objective = draw(st.sampled_from(metrics))
        known = catalog.metric(objective) if sklearn else None  # a scikit-learn trainer's goal follows its metric
        training["tuning"] = {
            "objective": {"metric": objective, "goal": known.goal if known else draw(st.sampled_from(["maximize", "minimize"]))},
            "max_trials": max_trials,
            "parallel_trials": draw(st.integers(1, max_trials)),
            "algorithm": draw(st.sampled_from(["bayesian", "random", "grid"])),
            "params": draw(st.dictionaries(estimator_param_names(estimator) if sklearn else COLUMN, search_param(), min_size=1, max_size=3)),
        }

    registry: dict[str, Any] = {"model": draw(DNS_NAME), "approval": draw(st.sampled_from(["manual", "auto"]))}
    if draw(st.booleans()):
        registry["aliases"] = draw(_unique(LABEL_KEY, 0, 2))
    if draw(st.booleans()):
        registry["tags"] = draw(st.dictionaries(LABEL_KEY, st.text(LOWER, max_size=10), max_size=2))

    spec: dict[str, Any] = {
        "apiVersion": "mlcompile/v1",
        "kind": "MLSystem",
        "metadata": metadata,
        "features": {"entities": entities, "sources": sources, "views": views},
        "training": training,
        "registry": registry,
    }

    # ------------------------------------------------------------------ deployment, monitoring, retraining
    deployment: dict[str, Any] = {}
    shape = draw(st.sampled_from(["none", "online", "batch", "both"]))
    if shape in ("online", "both"):
        online: dict[str, Any] = {"endpoint": draw(DNS_NAME), "resources": draw(serving_resources())}
        low = draw(st.integers(0, 3))
        online["replicas"] = {"min": low, "max": low + draw(st.integers(0 if low else 1, 5))}
        if draw(st.booleans()):
            metrics_allowed = ["cpu", "requests_per_replica"] + (["gpu"] if "accelerator" in online["resources"] else [])
            metric = draw(st.sampled_from(metrics_allowed))
            online["autoscaling"] = {"metric": metric, "target": draw(st.integers(1, 100 if metric != "requests_per_replica" else 1000))}
        strategy = draw(st.sampled_from(["replace", "canary", "blue_green"]))
        online["rollout"] = {"strategy": strategy, **({"canary_percent": draw(st.integers(1, 99))} if strategy == "canary" else {})}
        deployment["online"] = online
    if shape in ("batch", "both"):
        batch: dict[str, Any] = {
            "schedule": draw(st.sampled_from(CRONS)),
            "input": {"source": draw(st.sampled_from(source_names))},
            "output": {"uri": "file://out/scores.parquet"},
        }
        if draw(st.booleans()):
            batch["timezone"] = draw(st.sampled_from(TIMEZONES))
        if draw(st.booleans()):
            batch["resources"] = draw(serving_resources())
        deployment["batch"] = batch
    if deployment:
        spec["deployment"] = deployment

    watched = False
    if deployment and draw(st.booleans()):
        monitoring: dict[str, Any] = {"schedule": draw(st.sampled_from(CRONS)), "timezone": draw(st.sampled_from(TIMEZONES))}
        scored = [m for m in metrics if sklearn or catalog.metric(m) is not None]  # performance is computed by the runtime
        parts = draw(st.sampled_from(["drift", "performance", "both"] if scored else ["drift"]))
        if parts in ("drift", "both"):
            methods = ["psi", "jensen_shannon"] + (["ks", "wasserstein"] if numeric_refs else [])
            method = draw(st.sampled_from(methods))
            pool = numeric_refs if method in ("ks", "wasserstein") else refs
            every = method in ("psi", "jensen_shannon") or len(numeric_refs) == len(refs)
            features: Any = "all" if every and draw(st.booleans()) else draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
            monitoring["drift"] = {"method": method, "threshold": draw(st.floats(0.001, 10.0)), "features": features}
        if parts in ("performance", "both"):
            performance_metric = draw(st.sampled_from(scored))
            monitoring["performance"] = {
                "metric": performance_metric,
                "min": readable_bound(performance_metric, draw(st.floats(-1, 1)), "min") if sklearn else draw(st.floats(-1, 1)),
                "ground_truth": {"source": draw(st.sampled_from(source_names)), "column": label_column},
            }
        alerts = []
        if draw(st.booleans()):
            alerts.append({"channel": "email", "to": ["ml@example.com"]})
        if draw(st.booleans()):
            alerts.append({"channel": "webhook", "url": "secret://alerts-hook"})
        monitoring["alerts"] = alerts
        monitoring["on_breach"] = draw(st.sampled_from(["retrain", "alert"]))
        spec["monitoring"] = monitoring
        watched = True
    if draw(st.booleans()):
        retraining: dict[str, Any] = {}
        if draw(st.booleans()):
            retraining["schedule"] = draw(st.sampled_from(CRONS))
            retraining["timezone"] = draw(st.sampled_from(TIMEZONES))
        if watched and draw(st.booleans()):
            retraining["on_drift"] = True
        if draw(st.booleans()) or not retraining:
            retraining["on_new_data"] = {"source": draw(st.sampled_from(source_names))}
        spec["retraining"] = retraining

    spec["overrides"] = draw(overrides(spec))
    return spec


@st.composite
def overrides(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    """Per-profile patches: every cloud profile gets URIs its platform reads; most get the
    changes its platform needs (an ECR image, no tuning of a scikit-learn trainer, …), the
    rest are left for the target to refuse at the spec location."""
    result: dict[str, Any] = {}
    sources = spec["features"]["sources"]
    training = spec["training"]
    online = spec.get("deployment", {}).get("online")
    for profile, (files, tables) in CLOUD_URIS.items():
        patch: dict[str, Any] = {"features": {"sources": []}}
        for source in sources:
            if tables and draw(st.booleans()):
                patch["features"]["sources"].append({"name": source["name"], "uri": f"{tables}.{source['name']}", "format": "table"})
            else:
                fmt = draw(st.sampled_from(["csv", "parquet"]))
                patch["features"]["sources"].append({"name": source["name"], "uri": f"{files}/{source['name']}.{fmt}", "format": fmt})
        if "batch" in spec.get("deployment", {}):
            patch["deployment"] = {"batch": {"output": {"uri": f"{files}/scores.parquet" if not tables else f"{tables}.scores"}}}
        accommodate = draw(st.integers(0, 4)) > 0  # four in five: what the platform needs
        if accommodate and online is not None and online["replicas"]["min"] == 0 and profile != "kfp-prod":
            patch.setdefault("deployment", {})["online"] = {"replicas": {"min": 1, "max": max(1, online["replicas"]["max"])}}
        if accommodate and profile == "aws-prod":
            if "container" in training["trainer"]:
                container = {"image": ECR_IMAGE} | ({"command": [], "args": []} if "tuning" in training else {})
                patch["training"] = {"trainer": {"container": container}}
            elif "tuning" in training:
                patch["training"] = {"tuning": None}
        if draw(st.integers(0, 3)) == 0:  # a resource change for this profile only
            patch.setdefault("training", {})["resources"] = draw(training_resources())
        result[profile] = patch
    if draw(st.booleans()):
        result["local"] = {"training": {"resources": {"cpu": draw(st.sampled_from([1, 2]))}}}
    return result


def dump(spec: dict[str, Any]) -> bytes:
    return yaml.dump(spec, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, sort_keys=False, width=10_000).encode()


# ------------------------------------------------------------------------------ building


@dataclass
class Outcome:
    """What became of one spec for one profile: built (with its files), or refused with
    diagnostics; `problem` says what broke the contract (None when nothing did)."""

    profile: str
    files: dict[str, bytes] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def built(self) -> bool:
        return self.problem is None and not self.diagnostics


def load_profile_set(folder: Path) -> ProfileSet:
    """The toy profiles, written to `folder` (a `targets/` folder beside the specs)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PROFILE_TEXTS.items():
        (folder / f"{name}.yaml").write_text(text)
    return resolve_profiles(str(folder / ".." / "mlcompile.yaml"), [str(folder)])


def build_once(spec: Path, profiles: ProfileSet) -> list[Outcome]:
    """Compile `spec` for each profile on its own, in-process, as `mlcompile build` does: the
    rendered files plus manifest.json per profile, or the diagnostics it was refused with."""
    outcomes = []
    for profile in profiles.profiles:
        outcome = Outcome(profile.name)
        try:
            compilation = compile_system(str(spec), ProfileSet([profile], profiles.known_names), render=True, git_commit=None)
        except SpecError as exc:
            outcome.diagnostics = [d.render() for d in exc.diagnostics if d.severity == "error"]
            errors = [d for d in exc.diagnostics if d.severity == "error"]
            if not errors:
                outcome.problem = "SpecError without an error diagnostic"
            elif not all(d.file and d.line >= 1 and d.col >= 1 for d in errors):
                outcome.problem = f"unlocated diagnostic: {errors}"
        except Exception as exc:  # the contract: nothing but a located SpecError
            outcome.problem = f"{type(exc).__name__}: {exc}"
        else:
            (result,) = compilation.results
            outcome.files = {f.path: f.content for f in [*result.files, manifest(result)]}
        outcomes.append(outcome)
    return outcomes


def digest(files: dict[str, bytes]) -> str:
    """One hash of a build: every path and its bytes, in path order."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def build_digests(specs: list[Path], profiles: ProfileSet) -> dict[str, tuple[str, list[str]]]:
    """'<spec>:<profile>' -> (digest of the build, or '' when refused; its error diagnostics)."""
    found = {}
    for spec in specs:
        for outcome in build_once(spec, profiles):
            assert outcome.problem is None, f"{spec} for {outcome.profile}: {outcome.problem}"
            found[f"{spec}:{outcome.profile}"] = (digest(outcome.files) if outcome.built else "", outcome.diagnostics)
    return found


def build_once_for_warmup(folder: Path, profiles: ProfileSet) -> float:
    """Seconds to build the toy spec for every profile: imports every target's SDK once, so
    that the time of the first generated spec is not the time of those imports."""
    import time

    started = time.perf_counter()
    spec = folder / "warmup" / "mlcompile.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text((PROFILE_DIR.parent / "fixture" / "mlcompile.yaml").read_text())
    outcomes = build_once(spec, profiles)
    assert all(o.built for o in outcomes), [o.problem or o.diagnostics for o in outcomes if not o.built]
    return time.perf_counter() - started

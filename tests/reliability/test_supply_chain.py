"""What mlcompile installs is bounded, installed as declared, and free of known vulnerabilities
as far as PyPI can tell us.

* Bounds: every core dependency and every cloud SDK extra (kubeflow, vertex, sagemaker,
  azureml) in pyproject.toml is pinned exactly or capped below its next major release, so a
  new major cannot arrive unreviewed. tzdata is the one exception (calendar-versioned time
  zone data: the newest is the most correct). The local runtime's extra ([local]) is not
  checked: it does not run in CI with deploy credentials.
* Installed: the versions installed here satisfy those requirements (a lock drift shows up).
* Vulnerabilities: pip-audit needs per-version vulnerability data (PyPI's per-version JSON or
  OSV), which this CI cannot reach. The equivalent here asks PyPI's JSON API
  (https://pypi.org/pypi/<name>/json) for each of those dependencies: its `vulnerabilities`
  list covers the *latest* release only, so the check asserts it is empty when the installed
  version is the latest, and reports (does not fail) the dependencies whose installed version
  is older and therefore not covered. It does not look at transitive dependencies (boto3,
  azure-identity, protobuf, …) or at the local runtime's packages, and it is skipped when PyPI
  cannot be reached. Where pip-audit and OSV are reachable, `pip-audit` covers all of that.
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CLOUD_EXTRAS = ("kubeflow", "vertex", "sagemaker", "azureml")
UNCAPPED_ON_PURPOSE = {"tzdata"}


def checked_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"]) + [text for extra in CLOUD_EXTRAS for text in project["optional-dependencies"][extra]]
    requirements: dict[str, Requirement] = {}
    for text in texts:
        requirement = Requirement(text)
        requirements.setdefault(requirement.name.lower(), requirement)
    return sorted(requirements.values(), key=lambda r: r.name.lower())


def is_capped(requirement: Requirement) -> bool:
    """Pinned (==, ===), compatible-release (~=), or an upper bound (<, <=) below the next major
    of the lowest version allowed."""
    for spec in requirement.specifier:
        if spec.operator in ("==", "===", "~=") and "*" not in spec.version:
            return True
        if spec.operator in ("<", "<="):
            floor = min((Version(s.version) for s in requirement.specifier if s.operator in (">=", ">")), default=Version("0"))
            if Version(spec.version).major <= floor.major + 1:
                return True
    return False


def test_every_core_dependency_and_cloud_sdk_is_capped_below_its_next_major() -> None:
    uncapped = [str(r) for r in checked_requirements() if r.name.lower() not in UNCAPPED_ON_PURPOSE and not is_capped(r)]
    assert uncapped == [], "add an upper bound on the major (or pin): " + ", ".join(uncapped)


def test_the_installed_versions_satisfy_the_declared_requirements() -> None:
    wrong, missing = [], []
    for requirement in checked_requirements():
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement.name)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            wrong.append(f"{requirement.name} {installed} does not satisfy {requirement}")
    assert wrong == []
    if missing:
        pytest.skip(f"not installed here (extras not installed): {', '.join(missing)}")


def _pypi(name: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, TimeoutError, OSError):
        return None


def test_no_known_vulnerability_in_the_installed_latest_releases(capsys: pytest.CaptureFixture[str]) -> None:
    installed = {}
    for requirement in checked_requirements():
        try:
            installed[requirement.name] = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip(installed, pool.map(_pypi, installed)))
    if all(answer is None for answer in answers.values()):
        pytest.skip("PyPI's JSON API is not reachable from here: no vulnerability data")
    vulnerable, not_covered, unanswered = [], [], []
    for name, version in installed.items():
        answer = answers[name]
        if answer is None:
            unanswered.append(name)
        elif answer["info"]["version"] != version:
            not_covered.append(f"{name} {version} (latest {answer['info']['version']})")
        else:
            vulnerable += [f"{name} {version}: {v.get('id')} {v.get('summary') or ''}".strip() for v in answer.get("vulnerabilities") or []]
    assert vulnerable == [], "known vulnerabilities in installed releases:\n" + "\n".join(vulnerable)
    with capsys.disabled():
        covered = len(installed) - len(not_covered) - len(unanswered)
        print(f"\nvulnerability check: {covered} of {len(installed)} dependencies checked (installed = latest release)"
              + (f"; not covered (older than latest): {', '.join(not_covered)}" if not_covered else "")
              + (f"; PyPI did not answer for: {', '.join(unanswered)}" if unanswered else ""))  # fmt: skip

"""Regenerate kfp_sdk_models.json: the field maps (json key -> openapi type) of the KServe and
Katib SDK models, read from their wheels without installing them.

Why not install them: `kserve` 0.21 would downgrade pandas (3.x -> 2.3) and pull a web
server stack, `kubeflow-katib` 0.19 would downgrade protobuf (6.x -> 4.25, which kfp and
google-cloud-aiplatform need) and kubeflow-training (1.9.4 -> 1.9.0). Their CRDs validate
nothing (Katib's Experiment CRD and KServe's minimal InferenceService CRD are
`x-kubernetes-preserve-unknown-fields: true`), so the SDK's generated models are the strictest
schema available. Kubernetes core types (V1Container, V1ObjectMeta, …) are not in this file:
tests resolve them from the installed `kubernetes` client.

    pip download --no-deps kubeflow-katib==0.19.0 kserve==0.21.0 -d /tmp/w
    python tests/stand_ins/kfp_sdk_models_extract.py /tmp/w/*.whl
"""

from __future__ import annotations

import ast
import json
import sys
import zipfile
from pathlib import Path


def models_of(wheel: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if "/models/" not in name or not name.endswith(".py"):
                continue
            tree = ast.parse(archive.read(name))
            for node in tree.body:
                if not isinstance(node, ast.ClassDef):
                    continue
                maps: dict[str, dict[str, str]] = {}
                for item in node.body:
                    if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name) and item.targets[0].id in ("openapi_types", "attribute_map"):
                        maps[item.targets[0].id] = ast.literal_eval(item.value)
                if "openapi_types" in maps:
                    found[node.name] = {maps["attribute_map"][attr]: kind for attr, kind in maps["openapi_types"].items()}
    return found


def main(wheels: list[str]) -> None:
    data = {Path(w).name.split("-")[0] + "==" + Path(w).name.split("-")[1]: models_of(w) for w in sorted(wheels)}
    out = Path(__file__).with_name("kfp_sdk_models.json")
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

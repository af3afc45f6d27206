"""The accelerator catalog: data sanity and the machine resolver."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlcompile.catalog import (
    CLUSTER_FLAVOURS,
    PLATFORMS,
    CatalogError,
    Machine,
    Resolution,
    accelerator_names,
    offered_accelerators,
    resolve_machine,
    suggest_accelerator,
)
from mlcompile.catalog import data as catalog_data
from mlcompile.catalog import resolve as catalog

SPEC_NAMES = {
    "nvidia-t4",
    "nvidia-l4",
    "nvidia-a10g",
    "nvidia-v100",
    "nvidia-a100-40gb",
    "nvidia-a100-80gb",
    "nvidia-h100-80gb",
    "tpu-v5e",
}
CLOUDS = ("vertex", "sagemaker", "azureml")
GPU_TOLERATION = (("effect", "NoSchedule"), ("key", "nvidia.com/gpu"), ("operator", "Exists"))


def resolve(platform: str, accelerator: str | None, **kw) -> Machine:
    return resolve_machine(platform, accelerator=accelerator, **kw).machine


def error(platform: str, accelerator: str | None, **kw) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        resolve_machine(platform, accelerator=accelerator, **kw)
    return caught.value


# ------------------------------------------------------------------ data sanity


def test_names_are_sorted_and_cover_the_spec():
    names = accelerator_names()
    assert names == sorted(names)
    assert names == list(catalog._catalog().accelerators)  # read without building the catalog, the same
    assert SPEC_NAMES <= set(names)


def test_every_portable_name_has_a_platform():
    for name in accelerator_names():
        assert any(name in offered_accelerators(p) for p in PLATFORMS), name


def test_every_machine_has_positive_resources_and_an_accelerator():
    data = catalog._catalog()
    for acc in data.accelerators.values():
        for platform, options in acc.options.items():
            assert options, (acc.name, platform)
            for o in options:
                assert o.vcpus > 0 and o.memory_gib > 0, (acc.name, o)
                assert o.count >= 1 and o.count in o.allowed, (acc.name, o)
    for platform in CLOUDS:
        assert data.cpu[platform], platform
        for o in data.cpu[platform]:
            assert o.vcpus > 0 and o.memory_gib > 0, o


def test_machine_names_are_unique_per_accelerator_and_platform():
    for acc in catalog._catalog().accelerators.values():
        for platform, options in acc.options.items():
            keys = [(o.name, o.count) for o in options]
            assert len(keys) == len(set(keys)), (acc.name, platform)


def test_vertex_entries_carry_the_vertex_enum():
    enums = {a.name: a.enum for a in catalog._catalog().accelerators.values() if "vertex" in a.options}
    assert enums == {
        "nvidia-t4": "NVIDIA_TESLA_T4",
        "nvidia-l4": "NVIDIA_L4",
        "nvidia-v100": "NVIDIA_TESLA_V100",
        "nvidia-a100-40gb": "NVIDIA_TESLA_A100",
        "nvidia-a100-80gb": "NVIDIA_A100_80GB",
        "nvidia-h100-80gb": "NVIDIA_H100_80GB",
        "tpu-v5e": "TPU_V5_LITEPOD",
    }


def test_n1_gpu_counts_respect_compute_engine_limits():
    # Compute Engine: per GPU count, the most vCPUs an N1 VM may have.
    limits = {"nvidia-t4": {1: 48, 2: 48, 4: 96}, "nvidia-v100": {1: 12, 2: 24, 4: 48, 8: 96}}
    for name, max_vcpus in limits.items():
        options = catalog._catalog().accelerators[name].options["vertex"]
        for o in options:
            assert o.name.startswith("n1-standard-")
            assert o.count in max_vcpus and o.vcpus <= max_vcpus[o.count], o
        for machine in {o.name for o in options}:
            vcpus = next(o.vcpus for o in options if o.name == machine)
            expected = [c for c, most in sorted(max_vcpus.items()) if vcpus <= most]
            assert [o.count for o in options if o.name == machine] == expected, machine


def test_known_absences():
    assert "nvidia-a10g" not in offered_accelerators("vertex")
    assert "nvidia-a10g" not in offered_accelerators("azureml")  # Azure's A10 is not an A10G
    assert "nvidia-l4" not in offered_accelerators("azureml")
    assert "tpu-v5e" not in offered_accelerators("sagemaker")
    assert offered_accelerators("kubeflow") == accelerator_names()


def test_the_shipped_data_json_is_the_yaml_files_parsed():
    assert catalog_data.generate() == catalog_data.DATA_FILE.read_text(encoding="utf-8"), f"run {catalog_data.COMMAND}"


def test_the_resolver_builds_the_same_catalog_from_the_yaml_files_as_from_data_json(monkeypatch: pytest.MonkeyPatch):
    from_json = catalog._catalog.__wrapped__()
    monkeypatch.setattr(catalog, "_read", lambda filename: yaml.safe_load((Path(catalog.__file__).parent / filename).read_text(encoding="utf-8")))
    assert catalog._catalog.__wrapped__() == from_json


def test_data_is_read_once():
    catalog._catalog.cache_clear()
    accelerator_names()
    resolve("vertex", "nvidia-t4")
    assert catalog._catalog.cache_info().misses == 1


def test_constants():
    assert PLATFORMS == ("kubeflow", "vertex", "sagemaker", "azureml")
    assert CLUSTER_FLAVOURS == ("gke", "eks", "aks", "generic")


# ------------------------------------------------------------------ clouds


def test_a100_40gb_on_vertex():
    m = resolve("vertex", "nvidia-a100-40gb")
    assert (m.name, m.accelerator_platform_name, m.accelerator_count) == ("a2-highgpu-1g", "NVIDIA_TESLA_A100", 1)
    assert (m.vcpus, m.memory_gib) == (12, 85)
    assert resolve("vertex", "nvidia-a100-40gb", count=2).name == "a2-highgpu-2g"
    assert resolve("vertex", "nvidia-a100-40gb", count=16).name == "a2-megagpu-16g"


def test_a100_40gb_on_sagemaker_warns_when_the_machine_carries_more():
    one = resolve_machine("sagemaker", accelerator="nvidia-a100-40gb", count=1)
    assert one.machine.name == "ml.p4d.24xlarge" and one.machine.accelerator_count == 8
    assert one.machine.accelerator_platform_name is None
    assert one.warnings == ("ml.p4d.24xlarge carries 8 nvidia-a100-40gb; 1 asked: SageMaker has no smaller machine with nvidia-a100-40gb",)
    eight = resolve_machine("sagemaker", accelerator="nvidia-a100-40gb", count=8)
    assert eight.machine.name == "ml.p4d.24xlarge" and eight.warnings == ()


def test_a100_40gb_on_azureml():
    r = resolve_machine("azureml", accelerator="nvidia-a100-40gb")
    assert r.machine.name == "Standard_ND96asr_v4"
    assert r.machine.accelerator_count == 8 and len(r.warnings) == 1


def test_t4_with_cpu_and_memory_on_sagemaker():
    m = resolve("sagemaker", "nvidia-t4", cpu=4, memory_gib=16)
    assert (m.name, m.accelerator_count, m.vcpus, m.memory_gib) == ("ml.g4dn.xlarge", 1, 4, 16)
    assert resolve("sagemaker", "nvidia-t4", count=4).name == "ml.g4dn.12xlarge"


def test_h100_on_azureml_has_8_gpus():
    r = resolve_machine("azureml", accelerator="nvidia-h100-80gb", count=8)
    assert r.machine.name == "Standard_ND96isr_H100_v5"
    assert r.machine.accelerator_count == 8 and r.warnings == ()
    assert error("azureml", "nvidia-h100-80gb", count=12).message == (
        "no azureml machine carries 12 × nvidia-h100-80gb; the most is 8 (Standard_ND96isr_H100_v5)"
    )


def test_smallest_machine_order_is_gpus_then_vcpus_then_memory():
    # g4dn.16xlarge (1 T4, 64 vCPU) beats g4dn.12xlarge (4 T4, 48 vCPU): fewest GPUs first.
    assert resolve("sagemaker", "nvidia-t4", cpu=48).name == "ml.g4dn.16xlarge"
    assert resolve("azureml", "nvidia-a100-80gb", memory_gib=300).name == "Standard_NC48ads_A100_v4"
    assert resolve("vertex", "nvidia-l4", cpu=20).name == "g2-standard-32"  # 1 L4 before g2-standard-24's 2


def test_warning_when_cpu_forces_more_gpus():
    r = resolve_machine("sagemaker", accelerator="nvidia-a10g", cpu=96)
    assert r.machine.name == "ml.g5.24xlarge"
    assert r.warnings == ("ml.g5.24xlarge carries 4 nvidia-a10g; 1 asked: no SageMaker machine with fewer nvidia-a10g has the cpu and memory asked",)


def test_n1_machines_take_gpus_only_in_allowed_counts():
    m = resolve("vertex", "nvidia-t4")
    assert (m.name, m.accelerator_count, m.accelerator_platform_name) == ("n1-standard-4", 1, "NVIDIA_TESLA_T4")
    r = resolve_machine("vertex", accelerator="nvidia-v100", count=3)
    assert (r.machine.name, r.machine.accelerator_count) == ("n1-standard-4", 4)
    assert r.warnings == ("n1-standard-4 carries 4 nvidia-v100; 3 asked: Vertex AI attaches nvidia-v100 to n1-standard-4 only in counts of 1, 2, 4 or 8",)
    # one V100 allows at most 12 vCPUs, so 16 vCPUs need two
    assert resolve("vertex", "nvidia-v100", cpu=16).accelerator_count == 2
    assert resolve("vertex", "nvidia-t4", cpu=64).accelerator_count == 4
    assert error("vertex", "nvidia-t4", count=8).message == ("no vertex machine carries 8 × nvidia-t4; the most is 4 (n1-standard-4)")


def test_tpu_v5e_on_vertex():
    m = resolve("vertex", "tpu-v5e", count=4)
    assert (m.name, m.accelerator_platform_name, m.accelerator_count) == ("ct5lp-hightpu-4t", "TPU_V5_LITEPOD", 4)
    assert (m.vcpus, m.memory_gib) == (112, 192)


def test_machine_notes_become_warnings():
    r = resolve_machine("vertex", accelerator="nvidia-h100-80gb")
    assert r.machine.name == "a3-highgpu-1g"
    assert any("spot" in w for w in r.warnings)
    assert resolve_machine("vertex", accelerator="nvidia-h100-80gb", count=8).warnings == ()


def test_platform_without_the_accelerator_lists_offerings():
    for platform in ("vertex", "azureml"):
        e = error(platform, "nvidia-a10g")
        assert e.message == f"{platform} does not offer nvidia-a10g"
        assert e.hint == f"{platform} offers: " + ", ".join(offered_accelerators(platform))
        assert "nvidia-a100-40gb" in e.hint


def test_retired_machines_are_never_chosen():
    e = error("azureml", "nvidia-v100")
    assert e.message.startswith("azureml no longer offers nvidia-v100: ")
    assert "Standard_NC6s_v3" in e.message and "2025-09-30" in e.message
    assert "nvidia-v100" not in offered_accelerators("azureml")


def test_unknown_accelerator_suggests_the_closest_name():
    e = error("vertex", "nvidia-a100")
    assert e.message == "unknown accelerator 'nvidia-a100'"
    assert e.hint == "did you mean 'nvidia-a100-40gb'?"
    assert error("vertex", "zzz").hint.startswith("known accelerators: nvidia-a100-40gb")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("nvidia-a100", "nvidia-a100-40gb"),
        ("A100", "nvidia-a100-40gb"),
        ("nvidia-a100-80", "nvidia-a100-80gb"),
        ("t4", "nvidia-t4"),
        ("nvidia-tesla-t4", "nvidia-t4"),
        ("NVIDIA_L4", "nvidia-l4"),
        ("H100", "nvidia-h100-80gb"),
        ("tpu v5", "tpu-v5e"),
        ("nvidia-l4", "nvidia-l4"),
    ],
)
def test_suggest_accelerator(typed, meant):
    assert suggest_accelerator(typed) == meant


def test_suggest_nothing_for_noise():
    assert suggest_accelerator("zzz") is None
    assert suggest_accelerator("") is None


def test_count_cpu_memory_beyond_every_machine():
    assert error("vertex", "nvidia-a100-40gb", count=32).message == ("no vertex machine carries 32 × nvidia-a100-40gb; the most is 16 (a2-megagpu-16g)")
    assert error("vertex", "nvidia-a100-40gb", count=2, cpu=200).message == (
        "no vertex machine with 2 or more nvidia-a100-40gb has 200 vcpus; the most is 96 (a2-highgpu-8g)"
    )
    assert error("sagemaker", "nvidia-t4", memory_gib=1000).message == (
        "no sagemaker machine with nvidia-t4 has 1000 GiB of memory; the most is 256 GiB (ml.g4dn.16xlarge)"
    )


def test_bad_arguments():
    assert error("vertx", "nvidia-t4").hint == "did you mean 'vertex'?"
    assert error("vertex", "nvidia-t4", count=0).message.startswith("accelerator count must be")
    assert error("vertex", None, cpu=-1).message.startswith("cpu must be")
    assert error("kubeflow", "nvidia-t4", cluster="gek").message == "unknown cluster flavour 'gek'"
    with pytest.raises(CatalogError):
        offered_accelerators("aws")


def test_error_messages_are_one_lowercase_line_without_a_period():
    errors = [
        error("vertex", "nvidia-a10g"),
        error("azureml", "nvidia-v100"),
        error("vertex", "nvidia-a100"),
        error("vertex", "nvidia-a100-40gb", count=32),
        error("vertex", None, cpu=500),
        error("sagemaker", None, cpu=2, memory_gib=1000),
        error("kubeflow", "tpu-v5e", cluster="eks"),
        error("kubeflow", "tpu-v5e", cluster="gke", count=16),
        error("vertx", None),
    ]
    for e in errors:
        assert "\n" not in e.message and e.message[0].islower() and not e.message.endswith("."), e.message
        assert str(e).startswith(e.message)


# ------------------------------------------------------------------ cpu only


@pytest.mark.parametrize(
    ("platform", "name"),
    [
        ("vertex", "e2-standard-4"),
        ("sagemaker", "ml.m5.xlarge"),
        ("azureml", "Standard_D4s_v3"),
        ("kubeflow", None),
    ],
)
def test_cpu_only(platform, name):
    r = resolve_machine(platform, accelerator=None, cpu=4, memory_gib=16)
    assert isinstance(r, Resolution) and r.warnings == ()
    m = r.machine
    assert (m.name, m.accelerator, m.accelerator_platform_name, m.accelerator_count) == (name, None, None, 0)
    if platform == "kubeflow":
        assert (m.vcpus, m.memory_gib, m.node_selector, m.tolerations) == (None, None, (), ())
    else:
        assert m.vcpus >= 4 and m.memory_gib >= 16


def test_cpu_only_picks_the_smallest_and_reports_the_largest():
    assert resolve("sagemaker", None).name == "ml.m5.large"
    assert resolve("azureml", None, memory_gib=100).name == "Standard_D32s_v3"
    assert error("vertex", None, cpu=64).message == "no vertex cpu machine has 64 vcpus; the most is 32 (e2-standard-32)"


# ------------------------------------------------------------------ kubeflow


def test_t4_on_gke():
    m = resolve("kubeflow", "nvidia-t4", cluster="gke")
    assert m.name is None and m.vcpus is None and m.memory_gib is None
    assert m.accelerator_platform_name == "nvidia.com/gpu"
    assert m.accelerator_count == 1
    assert m.node_selector == (("cloud.google.com/gke-accelerator", "nvidia-tesla-t4"),)
    assert m.tolerations == (GPU_TOLERATION,)


def test_count_is_the_limit_on_kubeflow():
    r = resolve_machine("kubeflow", accelerator="nvidia-h100-80gb", count=3, cluster="gke")
    assert r.machine.accelerator_count == 3 and r.warnings == ()


def test_eks_uses_karpenter_labels_and_tells_a100s_apart():
    forty = resolve("kubeflow", "nvidia-a100-40gb", cluster="eks")
    eighty = resolve("kubeflow", "nvidia-a100-80gb", cluster="eks")
    assert forty.node_selector == (("karpenter.k8s.aws/instance-family", "p4d"), ("karpenter.k8s.aws/instance-gpu-name", "a100"))
    assert eighty.node_selector == (("karpenter.k8s.aws/instance-family", "p4de"), ("karpenter.k8s.aws/instance-gpu-name", "a100"))
    assert resolve("kubeflow", "nvidia-a10g", cluster="eks").node_selector == (("karpenter.k8s.aws/instance-gpu-name", "a10g"),)
    assert forty.tolerations == (GPU_TOLERATION,)


def test_aks_tolerates_the_documented_taint_and_warns_about_the_model():
    r = resolve_machine("kubeflow", accelerator="nvidia-t4", cluster="aks")
    assert r.machine.node_selector == ()
    assert r.machine.tolerations == ((("effect", "NoSchedule"), ("key", "sku"), ("operator", "Equal"), ("value", "gpu")),)
    assert len(r.warnings) == 1 and r.warnings[0].startswith("aks nodes carry no gpu-model label")


def test_generic_cluster_pins_the_gpu_model_by_its_gpu_feature_discovery_label():
    # an A100 and a T4 must not both become "any nvidia.com/gpu node": GFD (NVIDIA GPU
    # Operator) labels nodes nvidia.com/gpu.product=<nvidia-smi product name, '-' for spaces>
    r = resolve_machine("kubeflow", accelerator="nvidia-a100-40gb", count=2)
    assert r.machine.node_selector == (("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"),)
    assert r.machine.tolerations == () and r.warnings == ()
    assert (r.machine.accelerator_platform_name, r.machine.accelerator_count) == ("nvidia.com/gpu", 2)
    products = {
        name: dict(resolve("kubeflow", name).node_selector)["nvidia.com/gpu.product"] for name in offered_accelerators("kubeflow") if name.startswith("nvidia-")
    }
    assert products == {
        "nvidia-t4": "Tesla-T4",
        "nvidia-l4": "NVIDIA-L4",
        "nvidia-a10g": "NVIDIA-A10G",
        "nvidia-v100": "Tesla-V100-SXM2-16GB",
        "nvidia-a100-40gb": "NVIDIA-A100-SXM4-40GB",
        "nvidia-a100-80gb": "NVIDIA-A100-SXM4-80GB",
        "nvidia-h100-80gb": "NVIDIA-H100-80GB-HBM3",
    }


def test_generic_cluster_refuses_an_accelerator_without_a_product_label():
    assert error("kubeflow", "tpu-v5e").message == "generic clusters have no tpu-v5e nodes"


def test_flavour_without_the_accelerator():
    e = error("kubeflow", "nvidia-a10g", cluster="gke")
    assert e.message == "gke clusters have no nvidia-a10g nodes"
    assert "nvidia-a10g is available on eks and generic clusters" in e.hint
    assert error("kubeflow", "tpu-v5e").hint.endswith("tpu-v5e is available on gke clusters")


def test_tpu_on_gke_uses_single_host_slices():
    m = resolve("kubeflow", "tpu-v5e", cluster="gke", count=4)
    assert m.accelerator_platform_name == "google.com/tpu" and m.accelerator_count == 4
    assert m.node_selector == (("cloud.google.com/gke-tpu-accelerator", "tpu-v5-lite-podslice"), ("cloud.google.com/gke-tpu-topology", "2x2"))
    assert m.tolerations == ((("effect", "NoSchedule"), ("key", "google.com/tpu"), ("operator", "Exists")),)
    r = resolve_machine("kubeflow", accelerator="tpu-v5e", cluster="gke", count=2)
    assert r.machine.accelerator_count == 4 and len(r.warnings) == 1
    assert error("kubeflow", "tpu-v5e", cluster="gke", count=16).message == ("no single-host tpu-v5e slice on gke has 16 chips; the most is 8 (2x4)")


def test_kubeflow_results_are_sorted_and_hashable():
    for flavour in CLUSTER_FLAVOURS:
        for name in accelerator_names():
            try:
                m = resolve("kubeflow", name, cluster=flavour)
            except CatalogError:
                continue
            assert list(m.node_selector) == sorted(m.node_selector)
            assert all(list(t) == sorted(t) for t in m.tolerations)
            hash(m)


def test_every_offered_accelerator_resolves_on_every_cloud():
    for platform in CLOUDS:
        for name in offered_accelerators(platform):
            m = resolve(platform, name)
            assert m.platform == platform and m.accelerator == name and m.accelerator_count >= 1


def test_a_truncated_name_suggests_the_shortest_completion() -> None:
    assert suggest_accelerator("nvidia-a10") == "nvidia-a10g"
    assert suggest_accelerator("nvidia-a100") == "nvidia-a100-40gb"

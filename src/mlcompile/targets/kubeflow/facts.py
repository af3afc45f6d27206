"""Kubernetes facts the kubeflow target needs beyond the accelerator catalog: how each
cluster flavour schedules a pod on spot capacity. Data, not logic; each fact has a source.

- gke: spot node pools are labelled `cloud.google.com/gke-spot=true`, and GKE recommends
  tainting them `cloud.google.com/gke-spot=true:NoSchedule`
  (https://cloud.google.com/kubernetes-engine/docs/how-to/spot-vms).
- eks (Karpenter, as in the catalog): `karpenter.sh/capacity-type=spot`
  (https://karpenter.sh/docs/concepts/scheduling/#well-known-labels).
- aks: spot node pools carry `kubernetes.azure.com/scalesetpriority=spot` as label and as
  NoSchedule taint (https://learn.microsoft.com/azure/aks/spot-node-pool).
- generic: no well-known label exists, so spot is refused there (check()).
"""

from __future__ import annotations

from typing import TypedDict


class SpotCapacity(TypedDict):
    node_selector: dict[str, str]
    tolerations: list[dict[str, str]]


SPOT: dict[str, SpotCapacity] = {
    "gke": {
        "node_selector": {"cloud.google.com/gke-spot": "true"},
        "tolerations": [{"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    },
    "eks": {"node_selector": {"karpenter.sh/capacity-type": "spot"}, "tolerations": []},
    "aks": {
        "node_selector": {"kubernetes.azure.com/scalesetpriority": "spot"},
        "tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}],
    },
}

# KServe predictor scale metrics (serving.kserve.io/v1beta1 PredictorSpec.scaleMetric) for
# the spec's autoscaling metrics; `gpu` has none (Knative/HPA scale on cpu, memory,
# concurrency, rps): refused by check().
KSERVE_SCALE_METRIC = {"cpu": "cpu", "requests_per_replica": "rps"}

# Katib algorithm names (https://www.kubeflow.org/docs/components/katib/user-guides/hp-tuning/configure-algorithm/)
KATIB_ALGORITHM = {"bayesian": "bayesianoptimization", "random": "random", "grid": "grid"}
KATIB_PARAMETER_TYPE = {"float": "double", "int": "int", "categorical": "categorical"}

# Retries of a task on spot capacity: a preemption fails the pod, the retry reschedules it.
SPOT_RETRIES = 3
# KFP recurring runs fire in the ScheduledWorkflow controller's time zone, UTC by default;
# schedules in any other zone become Kubernetes CronJobs (spec.timeZone, GA in 1.27).
KFP_SCHEDULE_TIMEZONE = "UTC"
# How often the new-data sensor pipeline looks for new rows (no storage events on Kubeflow).
NEW_DATA_POLL_CRON = "0 * * * *"

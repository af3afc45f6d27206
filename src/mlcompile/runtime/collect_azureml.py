"""Azure ML's model data collection from the serving container.

A custom container's requests are not collected by Azure ML: the container itself logs what
the model monitor reads, through `azureml.ai.monitoring.Collector`, one collection per name
the deployment's `data_collector` enables. The collector hands each frame to the data
collection sidecar Azure ML runs next to the container (AZUREML_MDC_CONFIG_PATH names the
enabled collections, AZUREML_MDC_HOST/PORT the sidecar), which writes it to the data asset
`<endpoint>-<deployment>-<collection>`.

What is logged is what the model saw: the feature columns after the online feature lookup
(a request may carry only entity keys), not the request body; and the predictions, joined to
their inputs by the collector's correlation id. The deployment turns this on with ENV_COLLECT
(set by the build when the spec monitors the model); elsewhere nothing is imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODEL_INPUTS = "model_inputs"
MODEL_OUTPUTS = "model_outputs"
COLLECTIONS = (MODEL_INPUTS, MODEL_OUTPUTS)
ENV_COLLECT = "MLCOMPILE_AZUREML_COLLECT"


class DataCollection:
    """The inputs and outputs collectors of one server. A collection the platform did not
    enable (or a full queue) drops the data with one warning; it never fails a request."""

    def __init__(self) -> None:
        from azureml.ai.monitoring import Collector

        self.warned: set[str] = set()
        self.inputs = Collector(name=MODEL_INPUTS, on_error=self._warn)
        self.outputs = Collector(name=MODEL_OUTPUTS, on_error=self._warn)

    def _warn(self, exc: Exception) -> None:
        if str(exc) not in self.warned:
            self.warned.add(str(exc))
            print(f"warning: Azure ML data collection: {exc}", flush=True)

    def collect(self, inputs: Any, predictions: list[Any], scores: list[Any]) -> None:
        """`inputs`: the model's input frame (one row per scored row); predictions and scores
        of the same rows, in order."""
        import pandas as pd

        context = self.inputs.collect(inputs)
        self.outputs.collect(pd.DataFrame({"prediction": predictions, "score": scores}), context)


def collection_from_env(environ: Mapping[str, str]) -> DataCollection | None:
    """The server's data collection when the deployment asks for it (ENV_COLLECT=true)."""
    if str(environ.get(ENV_COLLECT, "")).lower() != "true":
        return None
    return DataCollection()

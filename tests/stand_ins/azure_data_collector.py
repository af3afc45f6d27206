"""The data collection sidecar Azure ML runs next to a deployment whose `data_collector`
enables collections: `azureml.ai.monitoring.Collector` POSTs each collected frame to
http://$AZUREML_MDC_HOST:$AZUREML_MDC_PORT/modeldata/log (its MdcSender), the collection's
name in the `ce-type` header (`azureml.inference.<collection>`), the correlation id in
`ce-x-request-id`, the frame as JSON records. The stand-in records what arrives, per
collection, and `mdc_config` writes the config file Azure ML points AZUREML_MDC_CONFIG_PATH at."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import ParseResult

from mlcompile.emulate.services.http import JsonService


class DataCollectorStandIn(JsonService):
    def __init__(self) -> None:
        super().__init__()
        self.collected: dict[str, list[dict[str, Any]]] = {}
        self.arrived = threading.Condition()

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        if method != "POST" or url.path != "/modeldata/log":
            return 404, {"error": f"{method} {url.path}"}
        headers = self.last_headers
        collection = str(headers.get("ce-type", "")).removeprefix("azureml.inference.")
        with self.arrived:
            self.collected.setdefault(collection, []).append(
                {"correlation_id": headers.get("ce-x-request-id"), "model_version": headers.get("ce-model-version"), "rows": json.loads(raw)}
            )
            self.arrived.notify_all()
        return 200, {}

    def wait_for(self, *collections: str, timeout: float = 10.0) -> dict[str, list[dict[str, Any]]]:
        """What arrived, once every named collection has had a payload (the collector sends
        from a background thread)."""
        with self.arrived:
            self.arrived.wait_for(lambda: all(self.collected.get(c) for c in collections), timeout)
            return {name: list(payloads) for name, payloads in self.collected.items()}

    def environ(self, config: Path, collections: dict[str, bool]) -> dict[str, str]:
        """The variables Azure ML sets in the serving container, with the config file it writes."""
        config.write_text(
            json.dumps({"runMode": "cloud", "collections": {name: {"enabled": on, "sampleRatePercentage": 100} for name, on in collections.items()}})
        )
        host, port = self.url.removeprefix("http://").split(":")
        return {"AZUREML_MDC_CONFIG_PATH": str(config), "AZUREML_MDC_HOST": host, "AZUREML_MDC_PORT": port}

"""Imported by Python at start-up in an emulated container of a user's image (this folder is
first on its PYTHONPATH).

The emulator runs a user's image with this environment's Python, which has Feast installed for
mlcompile's feature store, not because the image has it. On its first request MLflow would load
Feast's header-provider plugin and with it all of Feast: ~4 s of CPU in every trial that logs
its objective to MLflow. Feast's provider is deferred here as in mlcompile's own processes
(mlcompile.runtime.mlflow_headers): the headers MLflow sends are the same."""

from mlcompile.runtime.mlflow_headers import defer_on_import

defer_on_import()

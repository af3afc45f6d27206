"""The SageMaker emulator: pipeline definitions (the JSON SageMaker Pipelines runs) interpreted
step by step with the `/opt/ml` container layout, in an emulated AWS account (moto on
127.0.0.1) that `mlcompile deploy` provisions, with the events between services (approval →
deploy) delivered as EventBridge would and the executions steps start (monitoring →
retraining) run (see docs/emulate.md)."""

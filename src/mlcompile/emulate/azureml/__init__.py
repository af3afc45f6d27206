"""The Azure ML half of the emulator: `mlcompile run SPEC --target PROFILE --emulate` for an
`azureml` profile runs the built pipeline jobs (pipelines/*.yml) the way Azure ML would
(jobs.py, steps.py, sweep.py, bindings.py), against a workspace stand-in on 127.0.0.1
(workspace.py, registry.py, services.py: ARM resources, MLflow tracking and registry, job
submission), through the life of the system (system.py, lifecycle.py). See docs/emulate.md."""

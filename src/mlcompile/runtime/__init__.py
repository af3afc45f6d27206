"""mlcompile's standard steps, run inside the pipelines' containers (and by `mlcompile run`)."""

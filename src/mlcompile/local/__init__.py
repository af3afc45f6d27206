"""The `local` platform at run time: `mlcompile run` (the executor) and `mlcompile serve`."""

"""What CI jobs run beside the commands: the pull-request comment and the pre-commit hooks."""

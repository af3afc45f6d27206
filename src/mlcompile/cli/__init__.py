"""The `mlcompile` command line: thin click commands over the library, one module per group of
commands (mlcompile/cli/*.py).

A command's module is imported only when that command runs (or when --help lists them all),
and heavy modules (pydantic models, targets, cloud SDKs) only inside the commands that need
them, so that `mlcompile --help`, `--version` and a bare `validate` start instantly."""

from __future__ import annotations

import importlib
import os

import click

from mlcompile import __version__
from mlcompile.cli.common import State

# pydantic looks for plugins by scanning the entry points of every installed distribution
# the first time a model is built (~15 ms with the cloud SDKs installed); the CLI uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# command name -> (module of mlcompile.cli, function)
COMMANDS = {
    "build": ("build", "build"),
    "deploy": ("deploy", "deploy"),
    "diff": ("diff", "diff"),
    "explain": ("explain", "explain"),
    "graph": ("explain", "graph"),
    "init": ("project", "init"),
    "plan": ("deploy", "plan_command"),
    "run": ("run", "run"),
    "schema": ("project", "schema"),
    "serve": ("run", "serve"),
    "targets": ("project", "list_targets"),
    "validate": ("validate", "validate"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported from their module the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, function = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"mlcompile.cli.{module}"), function), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="mlcompile")
@click.option("-q", "--quiet", count=True, help="Print only errors.")
@click.option("-v", "--verbose", count=True, help="Print more (repeat for more).")
@click.pass_context
def main(ctx: click.Context, quiet: int, verbose: int) -> None:
    """Compile one declarative ML-system spec into Kubeflow, Vertex AI, SageMaker and Azure ML
    pipelines, or run it on this machine."""
    state = ctx.ensure_object(State)
    state.verbosity = verbose - quiet

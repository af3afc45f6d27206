"""The plugin test kit: the checks every target must pass, built-in or third-party.

A target's tests build a spec for a profile through the same door `mlcompile build` uses
and hand the result to these checks (docs/writing-a-target.md walks through them):

* `assert_deterministic` — the same plan renders the same bytes, and fresh interpreters
  under other PYTHONHASHSEEDs, started from another folder, build the same files;
* `assert_manifest_complete` — `manifest.json` lists every file of the build exactly once,
  with its kind and the sha256 of its bytes;
* `assert_refused` — a spec field the platform cannot honour stops the build at exit 2
  with a `file:line:col: error:` at that field, and nothing is written;
* `assert_matches_golden` — a build equals a folder of expected files byte for byte
  (`update=True` rewrites the folder instead, for a deliberate, reviewed regeneration).

`install_plugin` and `plugin_installed` put a plugin distribution where mlcompile finds it
(its entry point), in this process and in the interpreters the checks start.

The kit imports pytest nowhere: its checks raise AssertionError, which any runner reports."""

from mlcompile.testing.builds import Build, build, build_in_subprocess, install_plugin, plugin_installed, read_tree, uv_binary
from mlcompile.testing.checks import assert_deterministic, assert_manifest_complete, assert_refused, spec_position
from mlcompile.testing.golden import assert_matches_golden, write_golden

__all__ = [
    "Build",
    "assert_deterministic",
    "assert_manifest_complete",
    "assert_matches_golden",
    "assert_refused",
    "build",
    "build_in_subprocess",
    "install_plugin",
    "plugin_installed",
    "read_tree",
    "spec_position",
    "uv_binary",
    "write_golden",
]

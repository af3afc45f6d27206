"""`python -m mlcompile.runtime.run_step <step> --decision NAME … <runtime args>`: runs
one of mlcompile's runtime steps inside a KFP task and turns each named decision output (the
runtime writes a JSON document with a boolean `decision`) into the boolean output parameter
that `dsl.If` reads (KFP parses a BOOLEAN parameter file as `true`/`false`). Needs nothing but
mlcompile's runtime, which the runtime image has."""

from __future__ import annotations

import json
import os
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    decisions: list[str] = []
    while "--decision" in args:
        at = args.index("--decision")
        decisions.append(args[at + 1])
        del args[at : at + 2]
    scratch = tempfile.mkdtemp(prefix="mlcompile-decision-")
    parameters: dict[str, tuple[str, str]] = {}
    for at, value in enumerate(args):
        name, _, path = args[at + 1].partition("=") if value == "--output" and at + 1 < len(args) else ("", "", "")
        if name in decisions:
            document = os.path.join(scratch, f"{name}.json")
            parameters[name] = (document, path)
            args[at + 1] = f"{name}={document}"
    from mlcompile.runtime.__main__ import main as run

    status = run(args)
    if status:
        return status
    for document, path in parameters.values():
        with open(document, encoding="utf-8") as handle:
            value = json.load(handle)
        passed = bool(value.get("decision") if isinstance(value, dict) else value)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("true" if passed else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The source stays readable in pieces: no module of mlcompile is over 500 lines (split one by
concern when it grows past that)."""

from __future__ import annotations

from pathlib import Path

SOURCE = Path(__file__).parent.parent / "src" / "mlcompile"
MAX_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    sizes = {str(path.relative_to(SOURCE)): len(path.read_text(encoding="utf-8").splitlines()) for path in sorted(SOURCE.rglob("*.py"))}
    assert len(sizes) > 100  # the walk found the package
    over = {module: lines for module, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"

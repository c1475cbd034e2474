"""The README's benchmark table: generated from the kept bench outputs, and held to them."""

from __future__ import annotations

import json

import pytest

from .test_robustness import BENCH, bench

MODELS = {
    "bench": "models",
    "machine": "test",
    "tiny": {"ms_per_clip": 2.0, "hours_per_minute": 30.0, "peak_mb": 400.0, "parameters": 1000},
    "whisper": {"ms_per_clip": 60.0, "hours_per_minute": 1.0, "peak_mb": 700.0, "parameters": 20000},
}


def test_the_readme_table_is_what_the_kept_bench_outputs_give():
    (main,) = bench("summary", "main")
    assert main(["--check", "--results", str(BENCH / "results"), "--readme", str(BENCH.parent / "README.md")]) == 0


def test_a_row_is_computed_from_its_bench_json_line_and_a_stale_readme_is_caught(tmp_path, capsys):
    main, table_lines = bench("summary", "main", "table_lines")
    results = tmp_path / "results"
    results.mkdir()
    (results / "models.txt").write_text("| a table |\nBENCH_JSON " + json.dumps(MODELS) + "\n")
    (results / "notes.txt").write_text("a table only\n")
    lines = table_lines(results)
    assert lines[2] == (
        "| `models.txt` | 3 s clip: tiny 2.0 ms, Whisper-base 60.0 ms (30x); 30.0 vs 1.00 hours of audio per minute; "
        "peak 400 vs 700 MB; 1,000 vs 20,000 parameters |"
    )
    assert lines[-1] == "Without a BENCH_JSON line: `notes.txt`."
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- benchmarks:start -->\nold\n<!-- benchmarks:end -->\nrest\n")
    args = ["--results", str(results), "--readme", str(readme)]
    assert main([*args, "--check"]) == 1 and "stale" in capsys.readouterr().err
    assert main(args) == 0 and main([*args, "--check"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- benchmarks:start -->\n\n| output |") and text.endswith("-->\nrest\n")
    assert "old" not in text and lines[2] in text


def test_a_bench_without_a_row_format_is_refused_by_name(tmp_path):
    (table_lines,) = bench("summary", "table_lines")
    (tmp_path / "new.txt").write_text("BENCH_JSON " + json.dumps({"bench": "brand_new"}) + "\n")
    with pytest.raises(ValueError, match=r"new\.txt: no row format for bench 'brand_new'"):
        table_lines(tmp_path)

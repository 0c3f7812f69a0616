"""benchmarks.studies.before_after's comparison: per config accuracy, tokens, prefix-cache hit
rate and the problems whose outcome or token count changed between two checkouts."""

import json

from benchmarks.studies.before_after import main


def run_file(path, outcomes, hit_rate):
    path.write_text(json.dumps({
        "args": {"per_level": 1, "countdown": 1, "seed": 900000, "concurrency": 4},
        "configs": {"beam/3": {"phase": {"prefix_cache_hit_rate": hit_rate},
                               "outcomes": outcomes}}}))
    return str(path)


def test_compare_counts_the_problems_that_changed(tmp_path, capsys):
    before = run_file(tmp_path / "a.json", [["p1", True, 100], ["p2", False, 50]], 0.68)
    after = run_file(tmp_path / "b.json", [["p1", True, 100], ["p2", True, 60]], 0.70)
    md = tmp_path / "out.md"
    main(["compare", before, after, "--labels", "old", "new", "--md", str(md)])
    row = next(line for line in md.read_text().splitlines() if line.startswith("| beam/3"))
    assert row == "| beam/3 | 50.0% | 100.0% | 75.0 | 80.0 | 0.68 | 0.7 | 1 |"
    assert "accuracy old" in capsys.readouterr().out

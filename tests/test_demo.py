"""`textshift demo` end to end on the embedded data with a tiny backbone (the real one runs in `make demo`)."""

from __future__ import annotations


def test_demo_trains_compares_and_reuses_the_news_model(tmp_path, tiny_backbone, run_cli):
    out = tmp_path / "demo"
    args = ["demo", "-o", out, "--backbone", tiny_backbone, "--epochs", "1", "--sizes", "30,60"]
    result = run_cli(*args)
    assert result.exit_code == 0, result
    assert "macro-F1" in result.stdout and "recommended strategy" in result.stdout
    # the evidence for the recommendation at the largest size, in one line (held-out scores, gap, resamples won)
    evidence = [line for line in result.stdout.splitlines() if line.startswith("evidence at 60 rows:")]
    assert len(evidence) == 1 and "held-out" in evidence[0] and "resamples" in evidence[0], result.stdout
    assert (out / "news-model" / "model.safetensors").exists()
    report = (out / "compare" / "report.html").read_text()
    assert "learning-curves" in report and "Domain shift" in report
    assert (out / "compare" / "recommended-model" / "config.json").exists()
    again = run_cli(*args)
    assert again.exit_code == 0 and "reusing the news model" in again.stderr

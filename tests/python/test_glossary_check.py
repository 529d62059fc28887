"""Tests of scripts/glossary_check.py: chapters/GLOSSARY.md covers every term the English
notebooks introduce (bold, or italic on first use); a term planted in a notebook, or removed from
the glossary, makes the check fail naming it; run-in headings and code are not terms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "glossary_check.py"
sys.path.insert(0, str(REPO / "scripts"))
import glossary_check  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO)


def test_the_glossary_covers_the_notebooks():
    r = run()
    assert r.returncode == 0, f"glossary check failed on the repository:\n{r.stdout}{r.stderr}"
    assert "0 missing, 0 stale exclusions" in r.stdout, r.stdout
    # It did look at the notebooks: chapters 1-7 and appendices A, D, E, and many terms.
    assert "in 10 notebooks" in r.stdout, r.stdout
    n_terms = int(r.stdout.split("glossary check: ")[1].split(" distinct")[0])
    assert n_terms > 100, f"only {n_terms} terms extracted: the extraction broke\n{r.stdout}"


def test_a_planted_new_term_fails_naming_it(tmp_path):
    nb_path = REPO / "notebooks" / "ch03-attention.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    nb["cells"].append({
        "cell_type": "markdown",
        "id": "planted",
        "metadata": {},
        "source": ["A **sparse mixture of experts** routes each token to a few *expert networks*."],
    })
    planted = tmp_path / "ch03-attention.ipynb"
    planted.write_text(json.dumps(nb), encoding="utf-8")
    r = run(str(planted))
    assert r.returncode == 1, f"a planted term passed:\n{r.stdout}"
    assert "'sparse mixture of experts' (bold, first in ch03-attention.ipynb cell planted)" in r.stdout, r.stdout
    assert "'expert networks' (italic" in r.stdout, r.stdout
    assert "2 missing" in r.stdout, r.stdout


def test_a_term_removed_from_the_glossary_fails(tmp_path):
    text = (REPO / "chapters" / "GLOSSARY.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("| perplexity |")]
    assert len(lines) == len(text.splitlines()) - 1, "the glossary has no row for perplexity"
    glossary = tmp_path / "GLOSSARY.md"
    glossary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("--glossary", str(glossary))
    assert r.returncode == 1, r.stdout
    assert "missing from GLOSSARY.md: 'perplexity' (bold, first in ch05-pretraining.ipynb" in r.stdout, r.stdout


def test_a_stale_exclusion_fails(tmp_path):
    excl = tmp_path / "exclusions.tsv"
    text = (REPO / "scripts" / "glossary_exclusions.tsv").read_text(encoding="utf-8")
    excl.write_text(text + "never used anywhere\ta test entry\n", encoding="utf-8")
    r = run("--exclusions", str(excl))
    assert r.returncode == 1, r.stdout
    assert "stale exclusion in exclusions.tsv: 'never used anywhere'" in r.stdout, r.stdout


def test_what_counts_as_a_term():
    md = (
        "**The idea.** A **context vector** mixes values; *not* all of them.\n"
        "**Exercise 3.1** and *Exercise 3.2* are labels. `**x**` and $a * b * c$ are code and math.\n"
        "```rust\nlet y = x ** 2; // *not a term*\n```\n"
        "See [the *guide*](../chapters/ch03/README.md) and __tokens__."
    )
    assert glossary_check.terms_of_markdown(md) == [
        ("bold", "context vector"),
        ("bold", "tokens"),
        ("italic", "not"),
        ("italic", "guide"),
    ]


def test_plurals_adverbs_and_variants_match():
    assert "token" in glossary_check.forms("tokens")
    assert "autoregressive" in glossary_check.forms("autoregressively")
    assert glossary_check.norm("Instruction fine-tuning") == glossary_check.norm("instruction finetuning")
    entries = glossary_check.glossary_entries(REPO / "chapters" / "GLOSSARY.md")
    for e in ("byte pair encoding", "bpe", "shortcut connection", "shortcut", "finetuning", "encoder-decoder rnn"):
        assert e in entries, f"{e!r} not parsed from the glossary"

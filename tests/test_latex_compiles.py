"""A LaTeX table soc-kb exports compiles with pdflatex and booktabs alone (Debian's
texlive-latex-base and texlive-latex-recommended; .ci/run installs them), and every glyph it
asks for is in the fonts: the synthesis table of the shipped base as ``soc-kb synth`` writes
it, and a table of every character the renderer escapes."""

import shutil
import subprocess

import pandas as pd
from click.testing import CliRunner
from conftest import require

from kb.cli import cli
from kb.render import render_table

DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\begin{document}
\input{table.tex}
\end{document}
"""
COMPILE_SECONDS = 120  # a one-page document takes about a second; a stuck run must not hang CI

#: every LaTeX special character and the symbols the synthesis tables use, in a table
HOSTILE = pd.DataFrame({
    "n_studies": [3, 4],
    "not_reported": ["50% & #1 $x$ {a} ~b ^c \\d _e <f> |g|", "τ² ≥ 4 °C · σ² − I² — 1–2 é ü ø 中"],
    "estimate": [-0.25, None],
    "p": [0.0001, 0.5],
})


def compile_table(directory, table: str) -> str:
    """Compile ``table`` in a minimal document; return pdflatex's log."""
    require(shutil.which("pdflatex") is not None, "pdflatex is not installed")
    found = subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True, text=True)
    require(found.returncode == 0, "booktabs.sty is not installed (texlive-latex-recommended)")
    (directory / "table.tex").write_text(table, encoding="utf-8")
    (directory / "doc.tex").write_text(DOCUMENT, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                          "-no-shell-escape", "doc.tex"], cwd=directory, capture_output=True,
                         text=True, timeout=COMPILE_SECONDS)
    log = (directory / "doc.log").read_text(encoding="utf-8", errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert run.returncode == 0 and not errors, errors or run.stdout[-2000:]
    assert (directory / "doc.pdf").stat().st_size > 0
    return log


def test_the_synthesis_table_soc_kb_writes_compiles(seeded_copy, tmp_path):
    target = tmp_path / "table.tex"
    result = CliRunner().invoke(cli, ["--db", str(seeded_copy), "synth", "--by", "biome,warming",
                                      "--response", "soil_respiration", "--format", "latex",
                                      "--output", str(target)])
    assert result.exit_code == 0, result.output
    log = compile_table(tmp_path, target.read_text(encoding="utf-8"))
    assert "Missing character" not in log


def test_every_escaped_character_compiles_and_prints(tmp_path):
    table = render_table(HOSTILE, "latex", rounding={"estimate": 3}, pvalues=("p",),
                         headers={"estimate": "Estimate (lnRR) τ²", "p": "p_value 100%"},
                         notes=["Model: rma.mv(yi, vi, random = ~ 1 | source/site) & 95 % CI; "
                                "Rs_annual_err^2 {n} $5 #3"], caption="by biome_x: τ² ≥ 0")
    log = compile_table(tmp_path, table)
    assert "Missing character" not in log

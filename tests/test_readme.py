"""The README's examples run as written, on the shipped model, and print what it shows.

Every ```python block of README.md runs, in order, in one namespace, in a temporary working
directory. A block right after an HTML comment `<!-- no-test: REASON -->` is skipped (for
what needs a GPU, Ray or a trained pipeline folder). A line that ends with `# -> OUTPUT`, or
is followed by a comment line `# -> OUTPUT`, shows what the code up to it prints: the printed
text must equal OUTPUT, numbers within 0.02 (the outputs are rounded to two decimals, and bf16
on CPUs that have it moves scores by a few thousandths). The two set-up commands that CI runs
(.ci/run) stay in the README verbatim.
"""
import ast
import contextlib
import io
import math
import re
from pathlib import Path

import pytest

pytest.importorskip("spacy")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"^<!--\s*no-test:\s*(\S.*?)\s*-->$")
ARROW = "# -> "
INSTALL = ("pip install torch==2.13.0 -e . && python -m spacy_cortex annotate examples/texts.txt --ner PERSON "
           "--ner DRUG --cat billing --cat shipping --cat refund -q \"What dose was given?\"")
TESTS = "pip install torch==2.13.0 -e \".[test]\" && python -m pytest -q"


def blocks(text, language):
    """(first line number, code, skip reason or None) of each ```language block."""
    lines = text.split("\n")
    out, i, previous = [], 0, ""
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start = i + 1
            end = lines.index("```", start)
            match = SKIP.match(previous.strip())
            out.append((start + 1, "\n".join(lines[start:end]), match.group(1) if match else None))
            i = end + 1
            previous = ""
            continue
        if lines[i].strip():
            previous = lines[i]
        i += 1
    return out


def chunks(code):
    """Split a block into (code, expected output or None) at each `# -> ` line: the code up to
    and including the line that shows the output."""
    out, current = [], []
    for line in code.split("\n"):
        stripped = line.strip()
        if stripped.startswith(ARROW):  # the output of the line(s) before, on its own line
            out.append(("\n".join(current), stripped[len(ARROW):].strip()))
            current = []
        elif ARROW in line and not line.startswith((" ", "\t")):
            current.append(line)
            out.append(("\n".join(current), line.split(ARROW, 1)[1].strip()))
            current = []
        else:
            current.append(line)
    if any(l.strip() for l in current):
        out.append(("\n".join(current), None))
    return out


def parse(text):
    """The printed text as Python values: each space-separated literal at top level, so that
    `print(a, b)` of two lists compares value by value."""
    try:
        return [ast.literal_eval(text)]
    except (ValueError, SyntaxError):
        pass
    values, rest = [], text
    while rest:
        for cut in range(len(rest), 0, -1):
            if cut < len(rest) and rest[cut] != " ":
                continue
            piece = rest[:cut]
            try:
                values.append(ast.literal_eval(piece))
            except (ValueError, SyntaxError):
                continue
            rest = rest[cut:].lstrip(" ")
            break
        else:  # a bare word (e.g. a label printed without quotes)
            word, _, rest = rest.partition(" ")
            values.append(word)
    return values


def same(printed, shown, tolerance=0.02):
    if isinstance(shown, float) or isinstance(printed, float):
        return isinstance(printed, (int, float)) and isinstance(shown, (int, float)) and \
            math.isclose(printed, shown, abs_tol=tolerance)
    if isinstance(shown, (list, tuple)):
        return isinstance(printed, (list, tuple)) and len(printed) == len(shown) and \
            all(same(p, s, tolerance) for p, s in zip(printed, shown))
    if isinstance(shown, dict):
        return isinstance(printed, dict) and printed.keys() == shown.keys() and \
            all(same(printed[k], shown[k], tolerance) for k in shown)
    return printed == shown


def test_chunks_and_comparison():
    code = "a = 1\nprint(a)  # -> 1\nb = [0.5, 'x']\nprint(b)\n# -> [0.51, 'x']\nc = 2"
    assert chunks(code) == [("a = 1\nprint(a)  # -> 1", "1"), ("b = [0.5, 'x']\nprint(b)", "[0.51, 'x']"),
                            ("c = 2", None)]
    assert same(parse("refund 20 mg")[0], parse("refund 20 mg")[0])
    assert all(same(p, s) for p, s in zip(parse("['a', 'b'] [None, 0.5]"), parse("['a', 'b'] [None, 0.51]")))
    assert not same(parse("('x', 0.9)")[0], parse("('x', 0.8)")[0])
    assert parse("refund 20 mg") == ["refund", 20, "mg"]
    text = "x\n<!-- no-test: needs a GPU -->\n```python\ngpu()\n```\n```python\ncpu()\n```\n"
    assert [(code, reason) for _, code, reason in blocks(text, "python")] == [("gpu()", "needs a GPU"),
                                                                              ("cpu()", None)]


def test_setup_commands_stay_verbatim():
    """.ci/run installs and tests as these two lines say; each sits in a ```bash block."""
    bash = [code for _, code, _ in blocks(README.read_text(encoding="utf-8"), "bash")]
    assert any(INSTALL in code.split("\n") for code in bash)
    assert any(TESTS in code.split("\n") for code in bash)


def test_readme_python_examples_run_and_print_what_they_show(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = blocks(README.read_text(encoding="utf-8"), "python")
    assert found, "README.md has no ```python block"
    skipped = [reason for _, _, reason in found if reason]
    assert len(skipped) <= 2, f"no-test is for the few blocks that cannot run here: {skipped}"
    namespace = {"__name__": "__readme__"}
    shown = 0
    for line, code, reason in found:
        if reason:
            continue
        for part, expected in chunks(code):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(part, f"README.md:{line}", "exec"), namespace)
            if expected is None:
                continue
            shown += 1
            printed = out.getvalue().strip()
            assert printed, f"README.md block at line {line}: `{part.splitlines()[-1]}` shows {expected!r} but prints nothing"
            printed_values, shown_values = parse(printed), parse(expected)
            assert len(printed_values) == len(shown_values) and all(
                same(p, s) for p, s in zip(printed_values, shown_values)), \
                f"README.md block at line {line}: shows {expected!r}, prints {printed!r}"
    assert shown >= 3

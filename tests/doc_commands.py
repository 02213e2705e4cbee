"""The commands the README and docs/ show exist as written, and their links lead somewhere.

Every `make` goal in a code span or block is a goal of the Makefile (or a file rule of the
plans), every `P=<name>` names a pipeline file, and every `ser-<stage> <command> --flag` names a
command and flags that binary's --help lists. Commands that need data or hours of training are
not run here; tests/pipeline.sh runs the same goals on the demo pipeline. Usage:

    python3 tests/doc_commands.py <bin-dir> README.md docs/
"""

import re
import subprocess
import sys
from pathlib import Path

BINARIES = ("ser-features", "ser-model", "ser-tune", "ser-eval", "ser-infer", "ser-pipeline")


def code_snippets(text):
    """Each command line of the fenced and indented blocks and inline code spans (continuations joined)."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or line.startswith("    "):
            lines.append(re.sub(r"(^|\s)#.*$", "", line).strip())  # a shell comment is prose
        else:
            lines.extend(re.findall(r"`([^`]+)`", line))
    joined, carry = [], ""
    for line in lines:
        if line.endswith("\\"):
            carry += line[:-1] + " "
            continue
        joined.append(carry + line)
        carry = ""
    return joined


def makefile_goals():
    text = Path("Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


def help_text(bin_dir, binary, command, cache={}):
    key = (binary, command)
    if key not in cache:
        args = [str(Path(bin_dir) / binary)] + ([command] if command else []) + ["--help"]
        run = subprocess.run(args, capture_output=True, text=True)
        cache[key] = run.stdout if run.returncode == 0 else None
    return cache[key]


def check(bin_dir, paths):
    goals, pipelines = makefile_goals(), {p.stem for p in Path("pipelines").glob("*.yaml")}
    files = [f for p in paths for f in (sorted(Path(p).rglob("*.md")) if Path(p).is_dir() else [Path(p)])]
    problems, checked = [], 0
    for f in files:
        for snippet in code_snippets(f.read_text()):
            for cmd in re.split(r"\s*(?:&&|\|\||;|\|)\s*", snippet):
                words = cmd.split()
                if len(words) >= 2 and words[0] == "make":
                    checked += 1
                    for w in words[1:]:
                        if w.startswith("-") or "/" in w:
                            continue
                        if "=" in w:
                            key, value = w.split("=", 1)
                            if key == "P" and "<" not in value and value not in pipelines:
                                problems.append(f"{f}: `{cmd}`: no pipelines/{value}.yaml")
                        elif re.fullmatch(r"[a-z][a-z0-9-]*", w) and w not in goals:
                            problems.append(f"{f}: `{cmd}`: the Makefile has no goal {w}")
                for i, w in enumerate(words):
                    name = Path(w).name
                    if name not in BINARIES or i + 1 >= len(words):
                        continue
                    command = words[i + 1]
                    if not re.fullmatch(r"[a-z][a-z-]*", command):
                        continue
                    checked += 1
                    usage = help_text(bin_dir, name, command)
                    if usage is None:
                        problems.append(f"{f}: `{cmd}`: {name} has no command {command}")
                        continue
                    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(words[i + 2:])):
                        if not re.search(re.escape(flag) + r"\b", usage):
                            problems.append(f"{f}: `{cmd}`: {name} {command} has no flag {flag}")
                    break
    return checked, problems


def check_links(paths):
    """Each relative link of the Markdown files, and each docs/*.md that a pipeline, a source file
    or a document names, exists."""
    files = [f for p in paths for f in (sorted(Path(p).rglob("*.md")) if Path(p).is_dir() else [Path(p)])]
    problems, checked = [], 0
    for f in files:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", f.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            checked += 1
            if not (f.parent / target).exists():
                problems.append(f"{f}: the link {target} leads nowhere")
    named = files + sorted(Path("pipelines").glob("*.yaml")) + sorted(Path("crates").rglob("*.rs"))
    for f in named + [Path("Makefile")]:
        for target in set(re.findall(r"(?<![\w/.])docs/[\w./-]+\.md", f.read_text())):
            checked += 1
            if not Path(target).exists():
                problems.append(f"{f}: names {target}, which does not exist")
    return checked, problems


if __name__ == "__main__":
    checked, problems = check(sys.argv[1], sys.argv[2:])
    links, broken = check_links(sys.argv[2:])
    checked, problems = checked + links, problems + broken
    for p in problems:
        print(p)
    print(f"{checked} documented commands and links checked, {len(problems)} wrong")
    sys.exit(1 if problems or checked == 0 else 0)

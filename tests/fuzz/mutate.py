"""A mutation fuzzer for Compose files: seeds are the project's own example
and fixture files; each mutant is loaded as `compound config` would load it.

Every outcome must be one of: loads, or a CompoundError whose every problem
names a file and a line. Anything else (another exception, a run over the
time budget) is a finding. Shared by the test suite (2,000 mutants) and
bench/fuzz_spec.py (10,000).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compound.errors import CompoundError, SpecError, SpecErrors
from compound.spec import LoadOptions, load_project

ROOT = Path(__file__).resolve().parents[2]

# Fragments that mean something to YAML, to interpolation or to Compose.
TOKENS = [
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!reset ",
    "!override ",
    "${X}",
    "${X:-d}",
    "${X:?err}",
    "$$",
    "${",
    "'",
    '"',
    "#",
    "|",
    ">",
    "~",
    "null",
    "true",
    "yes",
    "0x1F",
    "0o17",
    "1e400",
    "99999999999999999999999t",
    "-1",
    "1.5",
    "\t",
    "\\",
    "\u00e9",
    "\U0001f600",
    "\x00",
    "://",
    "/dev/zero",
    "../../..",
    "80:80",
    "127.0.0.1:8080:80/udp",
    "65536:1",
    "1-65535",
    "10s",
    "1h2m3s",
    "512m",
    "service_healthy",
    "runtime: vm",
    "x-compound: {runtime: auto}",
    "extends: a",
    "depends_on: [a]",
    "networks: [nope]",
    "volumes: [x:/y]",
    "replicas: 1000000000",
]


@dataclass
class Outcome:
    loaded: int = 0
    rejected: int = 0
    findings: list[str] = field(default_factory=list)
    slowest: float = 0.0


def seeds() -> list[Path]:
    corpus = ROOT / "tests" / "unit" / "corpus"
    files = [ROOT / "examples" / "shop" / "compose.yaml"]
    files += sorted((corpus / "valid").glob("*.yaml")) + sorted((corpus / "invalid").glob("*.yaml"))
    return [f for f in files if f.is_file()]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or ["\n"]
    for _ in range(rng.choice((1, 1, 1, 2))):
        op = rng.randrange(8)
        i = rng.randrange(len(lines))
        line = lines[i]
        if op == 0:  # insert a token somewhere in a line
            pos = rng.randint(0, len(line))
            lines[i] = line[:pos] + rng.choice(TOKENS) + line[pos:]
        elif op == 1 and len(lines) > 1:  # drop a line
            del lines[i]
        elif op == 2:  # duplicate a line (duplicate keys, repeated entries)
            lines.insert(i, line)
        elif op == 3:  # re-indent
            lines[i] = " " * rng.choice((0, 1, 2, 3, 4, 6, 8)) + line.lstrip(" ")
        elif op == 4 and line.strip():  # flip a byte
            pos = rng.randrange(len(line))
            lines[i] = line[:pos] + chr(rng.randrange(32, 127)) + line[pos + 1 :]
        elif op == 5 and ":" in line:  # replace a value
            key, _, _ = line.partition(":")
            lines[i] = f"{key}: {rng.choice(TOKENS)}\n"
        elif op == 6:  # swap two lines
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 7 and rng.random() < 0.3:  # truncate the file here (now and then)
            lines = lines[: i + 1]
            lines[-1] = line[: rng.randint(0, len(line))]
    return "".join(lines)


def _located(exc: CompoundError) -> list[str]:
    """The problems of ``exc`` that do not name a file and a line."""
    problems = exc.errors if isinstance(exc, SpecErrors) else [exc]
    bad = []
    for p in problems:
        loc = p.location if isinstance(p, SpecError) else None
        if loc is None or not loc.file or not loc.line:
            bad.append(p.render().splitlines()[0])
    return bad


def run(count: int, workdir: Path, *, seed: int = 0, budget: float = 20.0) -> Outcome:
    rng = random.Random(seed)
    sources = [(p, p.read_text()) for p in seeds()]
    out = Outcome()
    for n, (origin, text) in enumerate(itertools.islice(_cycle(sources, rng), count)):
        case = workdir / f"m{n % 50}"  # a few dirs: relative paths of the seeds stay relative
        case.mkdir(exist_ok=True)
        for extra in (origin.parent / "files",):  # files the valid seeds refer to
            if extra.is_dir() and not (case / "files").exists():
                (case / "files").symlink_to(extra)
        file = case / "compose.yaml"
        mutant = mutate(text, rng)
        file.write_text(mutant, errors="surrogatepass")
        t0 = time.monotonic()
        try:
            load_project(LoadOptions(files=(str(file),), project_name="fuzz"))
            out.loaded += 1
        except CompoundError as exc:
            out.rejected += 1
            for problem in _located(exc):
                out.findings.append(f"unlocated ({origin.name} #{n}): {problem}")
        except Exception as exc:  # a finding, not a crash of the fuzzer
            out.findings.append(f"traceback ({origin.name} #{n}): {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - t0
        out.slowest = max(out.slowest, elapsed)
        if elapsed > budget:
            out.findings.append(f"slow ({origin.name} #{n}): {elapsed:.1f}s")
    return out


def _cycle(sources: list[tuple[Path, str]], rng: random.Random) -> Iterator[tuple[Path, str]]:
    # mostly valid seeds: their mutants reach the checks behind the parser
    valid = [s for s in sources if s[0].parent.name != "invalid"]
    while True:
        yield rng.choice(valid if rng.random() < 0.7 else sources)

"""The fenced code blocks of a Markdown page, with the ``docs-test`` directive written before each.

The docs test runs pages as a reader would follow them, so the page itself says how a block is to be
taken when "paste it into a shell" is not enough. A directive is an HTML comment (invisible on the
rendered site) on the last non-blank line before the block's opening fence::

    <!-- docs-test: skip (needs network: downloads from PyPI) -->   not run; the reason is required
    <!-- docs-test: background -->          a server the page runs in another terminal: started as
                                            printed, in the background, ready once it prints a line;
                                            stopped with Ctrl-C (SIGINT) at the end of the page,
                                            which must end it with exit status 0
    <!-- docs-test: background exports -->  the same, and the ``export`` lines it prints are then run
                                            in the page's shell (the reader pastes them)
    <!-- docs-test: output -->              a text block: the stdout of the block run just before,
                                            line by line; ``…`` stands for any text
    <!-- docs-test: file NAME -->           the page says "save this as NAME": written, not run
    <!-- docs-test: exit N -->              the block shows a failure: it must exit with status N

Any other directive is an error, so a typo cannot silently turn a check off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Languages the docs test runs: shell blocks in bash, Python blocks with the page's ``python``.
SHELL_LANGS = frozenset({"bash", "sh", "shell", "console"})
PYTHON_LANGS = frozenset({"python", "py", "python3"})
RUNNABLE_LANGS = SHELL_LANGS | PYTHON_LANGS

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+.-]*)")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")


class DocsTestDirectiveError(ValueError):
    """A page's ``docs-test`` directive is malformed or unknown."""


@dataclass(frozen=True)
class Directive:
    """What a ``<!-- docs-test: ... -->`` comment asks for (see the module docstring)."""

    kind: str  # "skip" | "background" | "output" | "file" | "exit"
    reason: str = ""  # skip
    exports: bool = False  # background exports
    file_name: str = ""  # file
    exit_status: int = 0  # exit

    @classmethod
    def parse(cls, body: str, where: str) -> Directive:
        skip = re.fullmatch(r"skip\s*\((?P<reason>[^)]*\S[^)]*)\)", body)
        if skip:
            return cls("skip", reason=skip["reason"].strip())
        if body in ("background", "background exports"):
            return cls("background", exports=body.endswith("exports"))
        if body == "output":
            return cls("output")
        file_match = re.fullmatch(r"file\s+(?P<name>[\w.-]+)", body)
        if file_match:
            return cls("file", file_name=file_match["name"])
        exit_match = re.fullmatch(r"exit\s+(?P<status>\d+)", body)
        if exit_match:
            return cls("exit", exit_status=int(exit_match["status"]))
        raise DocsTestDirectiveError(
            f"{where}: unknown docs-test directive {body!r}; use 'skip (REASON)', 'background', "
            "'background exports', 'output', 'file NAME' or 'exit N' (see tests/docs/doc_blocks.py)"
        )


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    directive: Directive | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE_LANGS

    def shell_script(self) -> str:
        """The commands of a shell block; a ``console`` block's commands are its ``$ `` lines (and
        their ``\\`` continuations), the rest of it is output."""
        if self.lang != "console":
            return self.text
        commands: list[str] = []
        continued = False
        for line in self.text.splitlines():
            if line.startswith("$ ") or continued:
                commands.append(line.removeprefix("$ ") if not continued else line)
                continued = line.endswith("\\")
        return "\n".join(commands) + "\n"


def read_blocks(path: Path, name: str | None = None) -> list[Block]:
    """Every fenced block of ``path`` in page order, with its directive.

    A block without a language is refused: on the pages the docs test runs, every block must say
    whether it is a command (``bash``, ``python``) or something to read (``text``, ``hcl``, ...), so
    that no command can hide from the test.
    """
    page = name or path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, lang = opening["indent"], opening["fence"], opening["lang"].lower()
        line_number = index + 1
        where = f"{page}:{line_number}"
        if not lang:
            raise DocsTestDirectiveError(f"{where}: a code block without a language; say bash, python, text, ...")
        directive = _directive_before(lines, index, where)
        body: list[str] = []
        index += 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence[0] * len(fence)) and lines[index].strip().strip(fence[0]) == ""
        ):
            body.append(lines[index].removeprefix(indent))
            index += 1
        if index >= len(lines):
            raise DocsTestDirectiveError(f"{where}: code block never closed")
        blocks.append(Block(page, line_number, lang, "\n".join(body) + "\n", directive))
        index += 1
    return blocks


def _directive_before(lines: list[str], fence_index: int, where: str) -> Directive | None:
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None
    match = _DIRECTIVE.match(lines[previous])
    return Directive.parse(match["body"], where) if match else None


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected`` line by line, ``…`` standing for any text within a line.

    Runs of blanks are compared as one blank (column padding is presentation, not data) and
    trailing blank lines are ignored.
    """

    def lines(text: str) -> list[str]:
        return [" ".join(line.split()) for line in text.rstrip().splitlines()]

    wanted, got = lines(expected), lines(actual)
    if len(wanted) != len(got):
        return False
    for pattern, line in zip(wanted, got, strict=True):
        regex = ".*".join(re.escape(part) for part in pattern.split("…"))
        if not re.fullmatch(regex, line):
            return False
    return True

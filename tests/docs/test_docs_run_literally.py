"""The docs work when followed literally: every shell and Python block of the quick start, the
local-services page, the CLI walk-through and the connections page runs as printed, in order, in a
fresh folder and environment, and prints what the page shows.

How a page marks what cannot run here (the network, minutes-long targets) and servers that run in
another terminal is in ``doc_blocks``; how the blocks are run is in ``page_session``. Each page starts
the servers it tells the reader to start (on the ports it names), so these tests use no fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.docs.doc_blocks import Block, DocsTestDirectiveError, read_blocks
from tests.docs.page_session import DocsPageError, PageSession, fresh_environment, virtualenv_bin

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The pages the docs test follows.
PAGES = ("quickstart.md", "local-services.md", "cli-walkthrough.md", "connections.md")


@contextmanager
def reader(tmp_path: Path, *, activated: bool = False) -> Iterator[PageSession]:
    """A reader in the top folder of their clone (``.venv`` is this virtualenv), with a new home and
    the virtualenv ``activated`` or not yet; the servers they start are stopped (Ctrl-C) at the end."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(virtualenv_bin().parent, target_is_directory=True)
    env = fresh_environment(tmp_path / "home", activated=activated)
    session = PageSession(clone, env, tmp_path / "harness")
    try:
        yield session
    except BaseException:
        with suppress(DocsPageError):  # the first failure is the one to report
            session.stop_servers()
        raise
    session.stop_servers()


def follow(page: str, tmp_path: Path, *, activated: bool = False) -> tuple[PageSession, list[Block]]:
    blocks = read_blocks(DOCS / page, page)
    with reader(tmp_path, activated=activated) as session:
        session.follow(blocks)
    return session, blocks


def ran(session: PageSession, fragment: str) -> list[str]:
    """The stdout of every block run whose text contains ``fragment``."""
    return [result.stdout for result in session.results if fragment in result.block.text]


# -- the pages -------------------------------------------------------------------------------------


@pytest.mark.slow  # Airflow's own command line (`airflow providers get`): seconds
def test_quick_start_runs_as_printed(tmp_path: Path) -> None:
    session, _ = follow("quickstart.md", tmp_path)
    reasons = {block.directive.reason for block in session.skipped if block.directive}
    assert all("needs network" in reason or "minutes" in reason for reason in reasons), reasons
    assert any("osscse --version" in result.block.text for result in session.results)


@pytest.mark.services  # starts the OSS, KMS and OpenBao servers as the page does
def test_local_services_page_runs_as_printed(tmp_path: Path) -> None:
    session, _ = follow("local-services.md", tmp_path)
    assert not session.skipped
    assert ran(session, "python -m pytest -q test_encrypted_upload.py")


@pytest.mark.services  # starts OpenBao and the OSS server as the page does
def test_cli_walk_through_runs_as_printed(tmp_path: Path) -> None:
    session, _ = follow("cli-walkthrough.md", tmp_path)
    assert not session.skipped
    home = tmp_path / "home" / "osscse-walkthrough"
    assert (home / "orders-copy.csv").read_bytes() == (home / "orders.csv").read_bytes()
    # every osscse command the page runs put its data, and only its data, on stdout (the page compares
    # each stdout with what it shows), and said nothing else there
    assert len(ran(session, "osscse ")) == 8


@pytest.mark.slow  # Airflow's own command line, five times: seconds each
def test_connections_page_runs_as_printed(tmp_path: Path) -> None:
    # The page is for a reader where Airflow is installed, as in an activated virtualenv with it.
    session, _ = follow("connections.md", tmp_path, activated=True)
    assert not session.skipped
    assert len(ran(session, "airflow connections get")) == 3


# -- what the docs test holds pages to --------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_a_tested_page_has_a_language_and_valid_directives(page: str) -> None:
    blocks = read_blocks(DOCS / page, page)  # raises on a block without a language or a bad directive
    assert any(block.runnable and block.directive is None for block in blocks)
    for block in blocks:
        if block.directive and block.directive.kind == "skip":
            assert block.runnable, f"{block.where}: only a command block can be skipped"


def _page(tmp_path: Path, markdown: str) -> list[Block]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "page.md"
    path.write_text(markdown)
    return read_blocks(path)


def _follow_page(tmp_path: Path, markdown: str) -> PageSession:
    blocks = _page(tmp_path, markdown)
    session = PageSession(tmp_path / "work", fresh_environment(tmp_path / "home", activated=True), tmp_path / "harness")
    try:
        session.follow(blocks)
    finally:
        session.stop_servers()
    return session


def test_an_unmarked_block_that_fails_fails_the_page_naming_where(tmp_path: Path) -> None:
    with pytest.raises(DocsPageError, match=r"page\.md:4: exit status 3"):
        _follow_page(tmp_path, "# t\n\ntext\n```bash\ntrue\n(exit 3)\necho never\n```\n")


def test_a_block_that_needs_the_network_fails_unless_the_page_marks_it(tmp_path: Path) -> None:
    url = "https://pypi.org/simple/"
    fetch = f"```bash\npython -c 'import urllib.request; urllib.request.urlopen(\"{url}\", timeout=10)'\n```\n"
    with pytest.raises(DocsPageError, match="exit status 1"):
        _follow_page(tmp_path / "unmarked", fetch)
    with pytest.raises(DocsPageError, match="exit status"):
        _follow_page(tmp_path / "pip", "```bash\npip download --no-deps -d dl oss2\n```\n")
    session = _follow_page(tmp_path / "marked", "<!-- docs-test: skip (needs network) -->\n" + fetch)
    assert [block.line for block in session.skipped] == [2]


def test_exports_and_the_working_folder_carry_over_to_the_next_block(tmp_path: Path) -> None:
    session = _follow_page(
        tmp_path,
        "```bash\nexport GREETING='hello there'\nmkdir sub && cd sub\n```\n"
        '```python\nimport os, pathlib\nprint(os.environ["GREETING"], pathlib.Path.cwd().name)\n```\n'
        "<!-- docs-test: output -->\n```text\nhello there sub\n```\n",
    )
    assert session.results[-1].stdout == "hello there sub\n"


def test_output_blocks_compare_stdout_line_by_line_with_ellipsis(tmp_path: Path) -> None:
    shows = "```bash\necho 'id   42  random-7f3a'\n```\n<!-- docs-test: output -->\n```text\n"
    _follow_page(tmp_path / "a", shows + "id 42 random-…\n```\n")
    with pytest.raises(DocsPageError, match="shows this output"):
        _follow_page(tmp_path / "b", shows + "id 43 random-…\n```\n")


def test_a_background_server_is_started_as_printed_its_exports_pasted_and_stopped_by_ctrl_c(tmp_path: Path) -> None:
    server = "trap 'exit 0' INT\necho 'export SERVER_URL=http://127.0.0.1:1234'\nwhile sleep 0.1; do :; done\n"
    session = _follow_page(
        tmp_path,
        f"<!-- docs-test: background exports -->\n```bash\n{server}```\n"
        '```bash\necho "$SERVER_URL"\n```\n<!-- docs-test: output -->\n```text\nhttp://127.0.0.1:1234\n```\n',
    )
    assert session.results[-1].stdout == "http://127.0.0.1:1234\n"
    with pytest.raises(DocsPageError, match="ended with exit status"):  # no clean stop on Ctrl-C
        _follow_page(tmp_path / "dirty", "<!-- docs-test: background -->\n```bash\necho up\nsleep 30\n```\n")


def test_an_expected_failure_must_fail_with_the_status_the_page_says(tmp_path: Path) -> None:
    _follow_page(tmp_path / "ok", "<!-- docs-test: exit 2 -->\n```bash\nexit 2\n```\n")
    with pytest.raises(DocsPageError, match="exit status 0, the page expects 2"):
        _follow_page(tmp_path / "no", "<!-- docs-test: exit 2 -->\n```bash\ntrue\n```\n")


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        ("```\nls\n```\n", "without a language"),
        ("<!-- docs-test: skip -->\n```bash\nls\n```\n", "unknown docs-test directive"),
        ("<!-- docs-test: skipp (typo) -->\n```bash\nls\n```\n", "unknown docs-test directive"),
        ("```bash\nls\n", "never closed"),
    ],
)
def test_malformed_pages_are_refused(tmp_path: Path, markdown: str, message: str) -> None:
    with pytest.raises(DocsTestDirectiveError, match=message):
        _page(tmp_path, markdown)

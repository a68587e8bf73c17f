"""Every Python sample of README.md and docs/*.md runs as copied, against a real server.

Each chain of blocks (tests/snippets.py) runs as a program of its own in a fresh interpreter,
with the server's URL in ``HOTCONFIG_URL``; one that defines tests is run by pytest. A broken
sample fails here, with the Markdown file's line number in its traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hotconfig.testing import EmbeddedServer
from tests.snippets import Block, Chain, blocks, chains

ROOT = Path(__file__).resolve().parents[1]
# docs/flask.md's blocks are one test module of their own: tests/integrations/flask/test_docs.py
# runs them (and type-checks them) together. Getting started's service waits for the change its
# next step makes: test_getting_started_as_written runs the two together.
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
OWN_TESTS = {"flask.md", GETTING_STARTED.name}
DOCS = sorted(page for page in (ROOT / "docs").glob("*.md") if page.name not in OWN_TESTS)
PAGES = [ROOT / "README.md", *DOCS]
CHAINS = [chain for page in PAGES for chain in chains(page)]
# A block marked not to run says why; there are few, each needing what a sample cannot start.
NOT_RUN = [block for page in PAGES for block in blocks(page) if block.not_run is not None]


def sample_env(url: str) -> dict[str, str]:
    env = {**os.environ, "HOTCONFIG_URL": url, "PYTHONUNBUFFERED": "1"}
    env.pop("HOTCONFIG_TEST_SERVER", None)
    return env


def written(chain: Chain, directory: Path) -> Path:
    module = directory / f"test_{chain.blocks[0].path.stem.replace('-', '_')}_sample.py"
    module.write_text(chain.source(), encoding="utf-8")
    return module


def run(chain: Chain, url: str, directory: Path) -> subprocess.CompletedProcess[str]:
    module = written(chain, directory)
    command = [sys.executable, str(module)]
    env = sample_env(url)
    if chain.tests:
        # A user's project, with hotconfig's plugin (its fixtures) and none of the seconds the
        # dev toolchain's other plugins take to import.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-p", "hotconfig.testing.plugin", str(module)]
    return subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# One server kind: what is tested is the sample, not the server.
@pytest.mark.parametrize("server_kind", ["valkey"], indirect=True)
@pytest.mark.parametrize("chain", CHAINS, ids=str)
def test_the_sample_runs_as_copied(chain: Chain, server: EmbeddedServer, tmp_path: Path) -> None:
    result = run(chain, server.url, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output.replace(str(tmp_path), "")
    if chain.tests:
        assert f"{len(chain.tests)} passed" in result.stdout, output


@pytest.mark.parametrize("server_kind", ["valkey"], indirect=True)
def test_the_readme_quick_start_shows_the_change_it_waits_for(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    quick_start = chains(ROOT / "README.md")[0]
    result = run(quick_start, server.url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:1] == ["gpt-4o-mini"]
    assert "ai.model.default: None -> 'gpt-4o'" in result.stdout


def commands(page: Path) -> list[list[str]]:
    """The ``hotconfig ...`` lines of the page's ```` ```sh ```` blocks, as arguments."""
    shell = re.findall(r"^```sh\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)
    lines = [line for block in shell for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("hotconfig ")]


@pytest.mark.parametrize("server_kind", ["valkey"], indirect=True)
def test_getting_started_as_written(server: EmbeddedServer, tmp_path: Path) -> None:
    """Step 3's service, then step 4's commands in another process: the service prints the
    change and stops."""
    (service,) = chains(GETTING_STARTED)
    steps = commands(GETTING_STARTED)
    assert steps == [["set", "ai.model.default", "gpt-4o"], ["get", "ai.model.default"]]
    env = sample_env(server.url)
    with subprocess.Popen(
        [sys.executable, str(written(service, tmp_path))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "serving gpt-4o-mini, status LIVE\n"
        cli = [sys.executable, "-m", "hotconfig.cli"]
        done = [subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=30)
                for args in steps]  # fmt: skip
        out, err = process.communicate(timeout=30)
    assert [step.returncode for step in done] == [0, 0], [step.stderr for step in done]
    assert done[1].stdout.strip() == '"gpt-4o"'
    assert process.returncode == 0, err
    assert out == "ai.model.default: 'gpt-4o-mini' -> 'gpt-4o'\nnow serving gpt-4o\n"


def test_the_pages_have_samples_and_few_are_left_unrun() -> None:
    assert len(CHAINS) >= 20
    assert all(block.not_run for block in NOT_RUN)  # each says why
    # A Django project, a Redis Cluster, a TLS server, an AI service's stream: raise this only
    # for a sample that needs what no test here can start.
    assert len(NOT_RUN) <= 8


def test_a_mark_is_one_of_the_two_forms(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- continue -->\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a block mark"):
        list(blocks(page))


def test_continues_needs_a_block_that_runs_before_it(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not run: a Django project -->\n```python\nA = 1\n```\n\n"
        "<!-- continues -->\n```python\nprint(A)\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="follows no block that runs"):
        chains(page)


def test_a_chain_keeps_the_pages_line_numbers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```python\nA = 1\n```\n\ntext\n\n"
        "<!-- continues -->\n```python\nprint(A)\n```\n",
        encoding="utf-8",
    )
    (chain,) = chains(page)
    assert chain.blocks == (
        Block(page, 4, "A = 1"),
        Block(page, 11, "print(A)", continues=True),
    )
    assert chain.source().splitlines()[3] == "A = 1"
    assert chain.source().splitlines()[10] == "print(A)"

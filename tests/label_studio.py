"""A real Label Studio for the end-to-end tests: installed from PyPI in a virtual environment of its own (its pins
never touch the ledger's), started on loopback with SQLite and a fresh data dir, and driven through its own API.

``label_studio`` is a session-scoped fixture (register it with ``from tests.label_studio import label_studio``
in a test module). Where Label Studio cannot be installed (no network, pip fails) or does not start, the tests
using it are skipped with the reason (pip's or Label Studio's last lines), never silently.

What Label Studio 1.23.2 needs to be driven this way, found by running it:
- ``label-studio start --no-browser --host 127.0.0.1 --port P --username E --password PW --user-token T
  --enable-legacy-api-token`` creates the user and its organisation with legacy API tokens enabled (without
  that flag they are off per organisation until enabled through ``/api/jwt/settings`` after a session login),
  so ``Authorization: Token T`` authenticates every API call.
- ``SSRF_PROTECTION_ENABLED=false``: otherwise it refuses webhook URLs on 127.0.0.0/8.
- A webhook must belong to a project (``POST /api/webhooks/`` without ``project`` is answered 404).
- Without Redis it posts each webhook synchronously, inside the API request that caused it, once: no retry,
  and it stops waiting after ``WEBHOOK_TIMEOUT`` seconds (default 1).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.test_cli import answers

VERSION = "1.23.2"
VENV_ENV = "LEDGER_TEST_LABEL_STUDIO_VENV"
INSTALL_TIMEOUT = 1800.0
START_TIMEOUT = 240.0
RECTANGLES = (
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="label" toName="image"><Label value="nodule"/></RectangleLabels></View>'
)
"""A labelling config of one rectangle label on an image."""


class Unavailable(Exception):
    """Label Studio could not be installed or started here; the message says why."""


def venv_path() -> Path:
    """Where Label Studio is installed: ``$LEDGER_TEST_LABEL_STUDIO_VENV``, else a per-user cache reused
    across runs."""
    configured = os.environ.get(VENV_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "ledger-tests" / f"label-studio-{VERSION}"


def _installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import label_studio; from importlib.metadata import version; print(version('label-studio'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def _tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of ``text``; of pip's output, its errors (its warnings can be many)."""
    every = text.strip().splitlines()
    errors = [line for line in every if line.startswith("ERROR")]
    return "\n".join((errors or every)[-lines:])


def ensure_installed(venv: Path) -> Path:
    """The ``label-studio`` executable of ``venv``, installing Label Studio there first unless it already is
    (healthy: it imports and is this version). ``Unavailable`` with pip's last lines when that fails.

    A lock beside the venv keeps two test runs from installing into it at once."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(venv) != VERSION:
            shutil.rmtree(venv, ignore_errors=True)
            _install(venv)
            found = _installed_version(venv)
            if found != VERSION:
                raise Unavailable(f"label-studio {VERSION} did not import after pip installed it in {venv}")
    return venv / "bin" / "label-studio"


def _install(venv: Path) -> None:
    # The base interpreter, not this venv's python: Label Studio's venv must not see the ledger's packages.
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    steps = [
        [str(base_python), "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"label-studio=={VERSION}"],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            raise Unavailable(f"`{' '.join(step)}` did not finish in {INSTALL_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise Unavailable(
                f"`{' '.join(step)}` exited {done.returncode}:\n{_tail(done.stderr or done.stdout)}"
            )


@dataclass(frozen=True, slots=True)
class LabelStudio:
    """A running Label Studio and the API token of its one user (an administrator)."""

    base: str
    token: str
    user_id: int
    log: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Label Studio's answer to ``method path`` (JSON, or ``None`` for 204); fails on any error status,
        with its answer."""
        answer = httpx.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"authorization": f"Token {self.token}"},
            timeout=60,
        )
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text[:2000]}"
        return answer.json() if answer.content else None

    def create_project(self, title: str, label_config: str = RECTANGLES) -> int:
        created = self.api("POST", "/api/projects/", {"title": title, "label_config": label_config})
        return int(created["id"])

    def add_webhook(self, project: int, url: str, headers: dict[str, str]) -> int:
        """A webhook of ``project`` sending every action with its payload to ``url`` with ``headers``."""
        hook = self.api(
            "POST",
            "/api/webhooks/",
            {
                "project": project,
                "url": url,
                "send_payload": True,
                "send_for_all_actions": True,
                "headers": headers,
                "is_active": True,
            },
        )
        webhook: int = hook["id"]
        return webhook

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Import ``tasks`` (each a task's ``data``, or a task with ``data``) and return the ids of all the
        project's tasks, oldest first."""
        self.api("POST", f"/api/projects/{project}/import", tasks)
        listed = self.api("GET", f"/api/tasks/?project={project}&page_size=1000")
        rows = listed["tasks"] if isinstance(listed, dict) else listed
        return sorted(int(row["id"]) for row in rows)

    def create_annotation(self, task: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        annotation: dict[str, Any] = self.api("POST", f"/api/tasks/{task}/annotations/", {"result": result})
        return annotation

    def update_annotation(self, annotation: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        updated: dict[str, Any] = self.api("PATCH", f"/api/annotations/{annotation}/", {"result": result})
        return updated

    def delete_annotation(self, annotation: int) -> None:
        self.api("DELETE", f"/api/annotations/{annotation}/")


def environment(data_dir: Path) -> dict[str, str]:
    """Label Studio's environment: SQLite and every file in ``data_dir``; webhooks allowed to loopback; no
    error reports, usage statistics or version checks sent anywhere; nothing of the ledger's environment."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "DJANGO_DB": "sqlite",
            "DATABASE_NAME": str(data_dir / "label_studio.sqlite3"),
            "SSRF_PROTECTION_ENABLED": "false",
            # Label Studio posts a webhook once, never again, and gives up after WEBHOOK_TIMEOUT (1 s by
            # default): on a loaded test machine the ledger's first answers can take longer.
            "WEBHOOK_TIMEOUT": "30",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",  # it would ask PyPI at start, waiting up to 10 s
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextmanager
def running(executable: Path, data_dir: Path) -> Iterator[LabelStudio]:
    """Label Studio started on a free loopback port over a fresh ``data_dir``, once ``/health`` answers and
    its user's token authenticates; its whole process group is stopped after. ``Unavailable`` with its
    log's last lines when it does not come up."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = secrets.token_hex(20)
    log = data_dir / "label-studio.log"
    command = [
        str(executable),
        "start",
        "--no-browser",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--username",
        "e2e-admin@example.invalid",
        "--password",
        secrets.token_urlsafe(16),
        "--user-token",
        token,
        "--enable-legacy-api-token",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=environment(data_dir),
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(f"{base}/health"):
            if process.poll() is not None:
                raise Unavailable(
                    f"label-studio exited {process.returncode}:\n{_tail(log.read_text('utf-8', 'replace'))}"
                )
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"label-studio did not answer /health in {START_TIMEOUT:.0f} s:\n"
                    f"{_tail(log.read_text('utf-8', 'replace'))}"
                )
            time.sleep(0.5)
        me = httpx.get(
            f"{base}/api/current-user/whoami", headers={"authorization": f"Token {token}"}, timeout=30
        )
        if me.status_code != 200:
            raise Unavailable(f"label-studio refused its user's token: {me.status_code} {me.text[:500]}")
        yield LabelStudio(base=base, token=token, user_id=int(me.json()["id"]), log=log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
    else:  # its children (if any) are in its group still
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """A running Label Studio of this version for the session; skipped, saying why, where it cannot be had."""
    started = time.monotonic()
    try:
        executable = ensure_installed(venv_path())
    except Unavailable as reason:
        pytest.skip(f"Label Studio {VERSION} cannot be installed here: {reason}")
    installed = time.monotonic()
    try:
        with running(executable, tmp_path_factory.mktemp("label-studio")) as studio:
            sys.stderr.write(
                f"\nlabel-studio {VERSION}: installed/checked in {installed - started:.0f} s, "
                f"up in {time.monotonic() - installed:.0f} s at {studio.base}\n"
            )
            yield studio
    except Unavailable as reason:
        pytest.skip(f"Label Studio {VERSION} did not start here: {reason}")

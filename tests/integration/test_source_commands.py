"""``ledger sources add|list|rotate|configure`` as an operator runs them: the real ``ledger`` command against
the test's own PostgreSQL database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.domain.errors import AuthenticationFailed
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.webhooks.config import load_config
from ledger.webhooks.model import SourceConfig
from ledger.webhooks.sources import SourceStore

LEDGER = Path(sys.executable).with_name("ledger")
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "webhook-source.example.toml"
BASE = "https://ledger.example.org"


class Cli:
    def __init__(self, ledger: Ledger) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        self.env.update(
            LEDGER_HOME=str(ledger.settings.home), LEDGER_DATABASE_URL=str(ledger.settings.database_url)
        )

    def __call__(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LEDGER), "sources", *map(str, args)], env={**self.env, **env},
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    def json(self, *args: str | Path) -> object:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(ledger: Ledger) -> Cli:
    return Cli(ledger)


@pytest.fixture
def store(ledger: Ledger) -> SourceStore:
    return SourceStore(ledger.db)


def secret_in(text: str) -> str:
    (secret,) = set(re.findall(r"[A-Za-z0-9_-]{43}", text))
    return secret


class TestAdd:
    def test_label_studio_prints_the_url_the_header_and_a_secret_that_authenticates(
        self, cli: Cli, store: SourceStore
    ) -> None:
        result = cli("add", "label-studio", "--tenant", "acme", "--name", "ls-main", "--config", EXAMPLE,
                     "--base-url", BASE + "/")  # fmt: skip

        assert result.returncode == 0, result.stderr
        secret = secret_in(result.stdout)
        lines = result.stdout.splitlines()
        assert lines[0] == "Added Label Studio source ls-main, writing to tenant acme."
        assert f"  URL:                  {BASE}/v1/webhooks/label-studio?source=ls-main" in lines
        assert "  Header name:          Authorization" in lines
        assert f"  Header value:         Bearer {secret}" in lines
        assert "  Send payload:         on" in lines
        assert "Settings > Webhooks > Add Webhook" in result.stdout
        assert result.stderr == ""  # the config maps users: no warning
        source = store.authenticate_bearer("ls-main", secret)
        assert (source.tenant, source.config) == ("acme", load_config(EXAMPLE))

    def test_cvat_as_json_gives_the_secret_its_signatures_are_checked_with(
        self, cli: Cli, store: SourceStore
    ) -> None:
        out = cli.json("add", "cvat", "--tenant", "acme", "--base-url", BASE)

        assert isinstance(out, dict)
        assert (out["name"], out["kind"], out["tenant"], out["rotated_at"], out["config"]) == (
            "cvat-1",
            "cvat",
            "acme",
            None,
            {"item": {"pattern": SourceConfig().item_pattern}},  # pinned: a new default never renames items
        )
        assert out["webhook_url"] == f"{BASE}/v1/webhooks/cvat?source=cvat-1"
        assert out["form"]["Target URL"] == out["webhook_url"]
        assert out["form"]["Content type"] == "application/json"
        assert out["form"]["Secret"] == out["secret"]
        assert out["form"]["Enable SSL"] == "on"
        assert store.cvat_secret("cvat-1")[1] == out["secret"]
        assert out["api"] == {
            "target_url": out["webhook_url"],
            "content_type": "application/json",
            "secret": out["secret"],
            "events": ["create:task", "update:task", "delete:task", "update:job", "delete:job"],
            "enable_ssl": True,
            "is_active": True,
        }

    def test_label_studio_as_json_gives_the_body_of_its_create_webhook_call(self, cli: Cli) -> None:
        out = cli.json("add", "label-studio", "--tenant", "acme", "--base-url", BASE)
        assert isinstance(out, dict)
        assert out["api"] == {
            "url": f"{BASE}/v1/webhooks/label-studio?source=ls-1",
            "headers": {"Authorization": f"Bearer {out['secret']}"},
            "send_payload": True,
            "send_for_all_actions": True,
            "is_active": True,
        }
        assert out["form"]["Header value"] == f"Bearer {out['secret']}"

    def test_a_source_without_users_is_added_with_a_warning_saying_how_to_map_them(self, cli: Cli) -> None:
        result = cli("add", "cvat", "--tenant", "acme")
        assert result.returncode == 0, result.stderr
        assert "maps no tool users yet" in result.stderr
        assert "ledger sources configure cvat-1 --config FILE" in result.stderr

    def test_the_default_base_url_is_where_ledger_serve_listens(self, cli: Cli) -> None:
        out = cli("add", "label-studio", "--tenant", "acme", "--json", LEDGER_PORT="8123")
        assert (
            json.loads(out.stdout)["webhook_url"]
            == "http://127.0.0.1:8123/v1/webhooks/label-studio?source=ls-1"
        )
        assert "SSRF_PROTECTION_ENABLED=false" in out.stderr  # Label Studio will not post to loopback

    def test_a_taken_name_is_exit_2_naming_it(self, cli: Cli) -> None:
        assert cli("add", "cvat", "--tenant", "acme", "--name", "cv").returncode == 0
        again = cli("add", "label-studio", "--tenant", "acme", "--name", "cv")
        assert (again.returncode, again.stdout) == (2, "")
        assert "'cv' exists already" in again.stderr

    def test_a_wrong_config_is_exit_2_naming_file_and_key_and_adds_nothing(
        self, cli: Cli, store: SourceStore, tmp_path: Path
    ) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("[users]\n'17' = 'jane.doe@example.org'\n")
        result = cli("add", "label-studio", "--tenant", "acme", "--config", bad)
        assert result.returncode == 2
        assert f"{bad}: users.17: holds an e-mail address" in result.stderr
        assert "jane.doe" not in result.stderr
        assert store.list() == []

    @pytest.mark.parametrize("url", ["ftp://ledger", "ledger.example.org", "http://ledger/?x=1"])
    def test_a_base_url_that_is_no_http_url_is_refused(self, cli: Cli, url: str) -> None:
        result = cli("add", "cvat", "--tenant", "acme", "--base-url", url)
        assert result.returncode == 2
        assert "--base-url must be an http or https URL" in result.stderr


class TestList:
    def test_lists_every_source_and_never_a_secret(self, cli: Cli) -> None:
        secrets = [
            secret_in(cli("add", kind, "--tenant", "acme", "--config", EXAMPLE, "--base-url", BASE).stdout)
            for kind in ("label-studio", "cvat")
        ]
        text = cli("list", "--base-url", BASE)
        listed = cli.json("list", "--base-url", BASE)

        assert text.returncode == 0, text.stderr
        header, *rows = text.stdout.splitlines()
        assert header.split() == ["NAME", "KIND", "TENANT", "CREATED", "ROTATED", "USERS", "WEBHOOK", "URL"]
        assert [r.split()[:3] + r.split()[4:] for r in rows] == [
            ["cvat-1", "cvat", "acme", "-", "2", f"{BASE}/v1/webhooks/cvat?source=cvat-1"],
            ["ls-1", "label-studio", "acme", "-", "2", f"{BASE}/v1/webhooks/label-studio?source=ls-1"],
        ]
        assert isinstance(listed, list)
        assert [s["name"] for s in listed] == ["cvat-1", "ls-1"]
        assert (
            listed[0]["config"]
            == listed[1]["config"]
            == {**listed[0]["config"], "users": {"17": "ann-0042", "23": "rev-0007"}}
        )
        for secret in secrets:
            assert secret not in text.stdout + json.dumps(listed)
        assert "secret" not in json.dumps(listed)

    def test_an_empty_list_says_how_to_add_one(self, cli: Cli) -> None:
        result = cli("list")
        assert (result.returncode, result.stdout) == (0, "")
        assert "ledger sources add" in result.stderr
        assert cli.json("list") == []


class TestRotate:
    def test_the_old_secret_is_refused_and_the_printed_one_taken(self, cli: Cli, store: SourceStore) -> None:
        old = secret_in(cli("add", "label-studio", "--tenant", "acme").stdout)
        result = cli("rotate", "ls-1", "--base-url", BASE)

        assert result.returncode == 0, result.stderr
        new = secret_in(result.stdout)
        assert new != old
        assert result.stdout.splitlines()[0] == (
            "New secret for Label Studio source ls-1; the old one is refused from now on."
        )
        assert f"  Header value:         Bearer {new}" in result.stdout.splitlines()
        assert "replace Header value (the rest stays as it was):" in result.stdout
        with pytest.raises(AuthenticationFailed):
            store.authenticate_bearer("ls-1", old)
        assert store.authenticate_bearer("ls-1", new).rotated_at is not None

    def test_cvat_as_json(self, cli: Cli, store: SourceStore) -> None:
        cli("add", "cvat", "--tenant", "acme")
        out = cli.json("rotate", "cvat-1")
        assert isinstance(out, dict)
        assert out["rotated_at"] is not None
        assert store.cvat_secret("cvat-1")[1] == out["secret"] == out["form"]["Secret"]

    @pytest.mark.parametrize(
        "action", [["rotate", "ghost"], ["configure", "ghost", "--config", str(EXAMPLE)]]
    )
    def test_an_unknown_source_is_exit_2_naming_it_and_the_list(self, cli: Cli, action: list[str]) -> None:
        result = cli(*action)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.strip() == (
            "ledger: no webhook source is named 'ghost'; `ledger sources list` shows the sources on record"
        )


class TestConfigure:
    def test_the_file_becomes_the_sources_config(self, cli: Cli, store: SourceStore) -> None:
        cli("add", "label-studio", "--tenant", "acme")
        result = cli("configure", "ls-1", "--config", EXAMPLE)
        assert result.returncode == 0, result.stderr
        assert "  users:     2 tool user(s) mapped" in result.stdout.splitlines()
        assert store.get("ls-1").config == load_config(EXAMPLE)

    def test_a_wrong_file_changes_nothing(self, cli: Cli, store: SourceStore, tmp_path: Path) -> None:
        cli("add", "label-studio", "--tenant", "acme", "--config", EXAMPLE)
        bad = tmp_path / "bad.toml"
        bad.write_text("[item]\npattern = '[0-9]+'\n")
        result = cli("configure", "ls-1", "--config", bad)
        assert result.returncode == 2
        assert f"{bad}: item.pattern: has no named group" in result.stderr
        assert store.get("ls-1").config == load_config(EXAMPLE)


def test_help_says_what_to_enter_in_each_tool(cli: Cli) -> None:
    result = cli("add", "--help")
    assert result.returncode == 0
    for text in ("name Authorization, value Bearer <secret>", "Send payload", "Content type  application/json",
                 "Secret        <secret>", "SSRF_PROTECTION_ENABLED=false"):  # fmt: skip
        assert text in result.stdout


def test_the_default_base_url_of_an_embedded_ledger_is_loopback() -> None:
    from ledger.cli.source_commands import default_base_url

    assert default_base_url(Settings(port=8100)) == "http://127.0.0.1:8100"
    assert (
        default_base_url(Settings(database_url="postgresql://x/y", host="10.0.0.5")) == "http://10.0.0.5:8000"
    )
    assert (
        default_base_url(Settings(database_url="postgresql://x/y", host="0.0.0.0")) == "http://127.0.0.1:8000"  # noqa: S104
    )


def test_on_the_embedded_default_the_url_is_loopback_at_ledger_port(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_HOME=str(tmp_path / "home"), LEDGER_PORT="8200")

    def sources(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LEDGER), "sources", *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip

    added = sources("add", "cvat", "--tenant", "acme", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["webhook_url"] == "http://127.0.0.1:8200/v1/webhooks/cvat?source=cvat-1"
    listed = sources("list", "--json")  # the embedded database kept it
    assert [s["name"] for s in json.loads(listed.stdout)] == ["cvat-1"]

"""``ledger sources add|list|rotate|configure``: the annotation tools allowed to post webhooks.

``add`` and ``rotate`` print the one moment a secret is shown, with exactly what to enter in the tool's
webhook form; ``list`` never prints a secret. Every sub-command takes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.domain.errors import ConfigurationError
from ledger.domain.stored import format_time
from ledger.runtime import open_ledger
from ledger.settings import Settings
from ledger.webhooks.config import config_document, load_config
from ledger.webhooks.model import KINDS, Kind, Source
from ledger.webhooks.sources import MAX_NAME_LENGTH, SourceStore, webhook_url

Handler = Callable[[Settings, argparse.Namespace], int]
EXIT_OK = 0

_TOOL: dict[Kind, str] = {"label-studio": "Label Studio", "cvat": "CVAT"}
_WHERE: dict[Kind, str] = {
    "label-studio": "In Label Studio: open the project > Settings > Webhooks > Add Webhook, and enter",
    "cvat": "In CVAT: open the project > Actions > Setup webhooks > + (or Organization > Settings > Actions > "
    "Setup webhooks), and enter",
}

_EPILOG = """\
Set-up, step by step (docs/integrations.md has the full mapping table):
  1. ledger sources add label-studio --tenant acme --config ls.toml      # prints URL, secret, the form
  2. ledger serve, listening where --base-url said (the tool must reach it there)
  3. enter what step 1 printed in the tool's webhook form (CVAT: then press Ping)
  4. a delivery by a tool user not under [users] of the config is refused on the record (202); map
     them and run: ledger sources configure NAME --config ls.toml

The config file (TOML, docs/webhook-source.example.toml): dataset, [item] field/pattern, [guideline]
id/version, [image] width/height, [model] name, [users] "<tool user id>" = "<ledger actor>".

Exit status: 0 done, 2 refused (an unknown source, a name taken, a config key that is wrong: the message
names it) or an error.
"""

_ADD_HELP = """\
Put a new source on record, bound to one tenant, and print its webhook URL and secret with exactly what to
enter in the tool's webhook form. The secret is shown only now (Label Studio's is kept as its SHA-256; CVAT's
is kept, since checking its signatures needs it); `ledger sources rotate` makes a new one.

Label Studio (project > Settings > Webhooks > Add Webhook):
  URL           <base>/v1/webhooks/label-studio?source=<name>
  Headers       Add header: name Authorization, value Bearer <secret>
                (Label Studio signs nothing: this header is what proves a delivery is the tool's)
  Send payload  on (the ledger maps what the payload carries; without it there is nothing to map)
  Actions       all of them, or at least the annotation, task and project actions
CVAT (project > Actions > Setup webhooks, or the organization's):
  Target URL    <base>/v1/webhooks/cvat?source=<name>
  Content type  application/json
  Secret        <secret>   (CVAT signs each body with it: X-Signature-256, HMAC-SHA256)
  Events        task (create, update, delete) and job (update, delete); Ping checks the set-up

Label Studio refuses webhook URLs on loopback (127.0.0.0/8) unless it runs with
SSRF_PROTECTION_ENABLED=false: give --base-url the address the tool reaches the ledger at.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``sources`` to ``sub``; return its handler by command name."""
    sources = sub.add_parser(
        "sources",
        help="manage the annotation tools that post webhooks (Label Studio, CVAT)",
        description="The webhook sources: each is one tool instance (a Label Studio or CVAT server) with a\n"
        "secret of its own, writing to one tenant, its deliveries mapped to ledger events by its config.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s_sub = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)

    add = s_sub.add_parser(
        "add",
        help="add a source; prints its webhook URL, its secret and what to enter in the tool",
        description=_ADD_HELP,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("kind", choices=KINDS, help="the tool")
    add.add_argument("--tenant", required=True, help="the one tenant every delivery of this source writes to")
    add.add_argument(
        "--name",
        help=f"the source's name, in every event and annotation id it maps: lowercase letters, digits and '-', "
        f"at most {MAX_NAME_LENGTH} (default: ls-<n> or cvat-<n>)",
    )
    _config_argument(add, required=False)
    _base_url_argument(add)
    _json_argument(add)

    listing = s_sub.add_parser(
        "list",
        help="list the sources (never their secrets)",
        description="Every source by name: kind, tenant, when added and last rotated, how many tool users "
        "its config maps, and its webhook URL. Secrets are never shown again after add and rotate.",
    )
    _base_url_argument(listing)
    _json_argument(listing)

    rotate = s_sub.add_parser(
        "rotate",
        help="give a source a new secret; the old one is refused from then on",
        description="Replace the source's secret and print the new one, with the field of the tool's webhook "
        "form to change (Label Studio: the Authorization header; CVAT: Secret). Deliveries with the old "
        "secret are refused 401 from now on, so change the tool's webhook at once.",
    )
    rotate.add_argument("name", help="the source (`ledger sources list` shows them)")
    _base_url_argument(rotate)
    _json_argument(rotate)

    configure = s_sub.add_parser(
        "configure",
        help="replace a source's mapping config (users, dataset, item rule, guideline…)",
        description="Read the TOML config file strictly (an unknown key or a wrong value is refused naming the "
        "file and the key) and make it the source's config: deliveries from now on are mapped under it. "
        "Deliveries refused before (an unmapped user) stay refused on the record; the tool's next delivery "
        "of the object is mapped under the new config.",
        epilog="Example config: docs/webhook-source.example.toml",
    )
    configure.add_argument("name", help="the source (`ledger sources list` shows them)")
    _config_argument(configure, required=True)
    _json_argument(configure)
    return {"sources": _sources}


def _config_argument(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        required=required,
        metavar="FILE",
        help="the source's mapping config, TOML (docs/webhook-source.example.toml); without [users] every "
        "delivery is refused on the record until `ledger sources configure` maps the tool's users",
    )


def _base_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="the ledger's address as the tool reaches it (default: where `ledger serve` listens, from "
        "LEDGER_HOST and LEDGER_PORT; http://127.0.0.1:<LEDGER_PORT> in embedded mode, 8000 unless set)",
    )


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def default_base_url(settings: Settings) -> str:
    """The URL ``ledger serve`` listens on by default: ``http://<LEDGER_HOST>:<LEDGER_PORT>``, loopback
    in embedded mode (which serves on loopback only) or when it binds every address."""
    host = settings.host
    if settings.embedded or host in ("", "0.0.0.0", "::"):  # noqa: S104  (naming the wildcard, not binding it)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _base_url(settings: Settings, given: str | None) -> str:
    if given is None:
        return default_base_url(settings)
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        msg = f"--base-url must be an http or https URL with a host and no query, got {given!r}"
        raise ConfigurationError(msg)
    return given.rstrip("/")


def _sources(settings: Settings, args: argparse.Namespace) -> int:
    config = load_config(args.config) if getattr(args, "config", None) is not None else None
    base = _base_url(settings, getattr(args, "base_url", None))
    with open_ledger(settings, pool_size=1) as ledger:
        store = SourceStore(ledger.db)
        action = args.sources_command
        if action == "add":
            source, secret = store.add(args.kind, args.tenant, name=args.name, config=config)
            _print_secret(source, secret, base, args.json, added=True)
        elif action == "rotate":
            secret = store.rotate(args.name)
            _print_secret(store.get(args.name), secret, base, args.json, added=False)
        elif action == "configure":
            assert config is not None  # --config is required
            _print_configured(store.configure(args.name, config), args.json)
        else:
            _print_list(store.list(), base, args.json)
    return EXIT_OK


def form(source: Source, url: str, secret: str) -> dict[str, str]:
    """What to enter in the tool's webhook form, field by field."""
    if source.kind == "label-studio":
        return {
            "URL": url,
            "Header name": "Authorization",
            "Header value": f"Bearer {secret}",
            "Send payload": "on",
            "Send for all actions": "on (or at least the annotation, task and project actions)",
        }
    return {
        "Target URL": url,
        "Content type": "application/json",
        "Secret": secret,
        "Events": "select individual events: task (create, update, delete), job (update, delete)",
        "Enable SSL": "on" if url.startswith("https:") else "off (the URL is http)",
        "Active": "on",
    }


CVAT_EVENTS = ("create:task", "update:task", "delete:task", "update:job", "delete:job")
"""The CVAT events the ledger maps (``ping`` is always sent)."""


def tool_api_body(source: Source, url: str, secret: str) -> dict[str, Any]:
    """The body of the tool's own create-webhook call (Label Studio ``POST /api/webhooks/``, CVAT
    ``POST /api/webhooks``), for set-up by script; add the tool's ``project`` / ``project_id``."""
    if source.kind == "label-studio":
        return {
            "url": url,
            "headers": {"Authorization": f"Bearer {secret}"},
            "send_payload": True,
            "send_for_all_actions": True,
            "is_active": True,
        }
    return {
        "target_url": url,
        "content_type": "application/json",
        "secret": secret,
        "events": list(CVAT_EVENTS),
        "enable_ssl": url.startswith("https:"),
        "is_active": True,
    }


def source_json(source: Source, base: str | None = None) -> dict[str, Any]:
    """A source as ``--json`` shows it: never its secret."""
    out: dict[str, Any] = {
        "name": source.name,
        "kind": source.kind,
        "tenant": source.tenant,
        "created_at": format_time(source.created_at),
        "rotated_at": format_time(source.rotated_at) if source.rotated_at else None,
        "config": config_document(source.config),
    }
    if base is not None:
        out["webhook_url"] = webhook_url(base, source)
    return out


def _print_secret(source: Source, secret: str, base: str, as_json: bool, *, added: bool) -> None:
    url = webhook_url(base, source)
    fields = form(source, url, secret)
    if as_json:
        api = tool_api_body(source, url, secret)
        print(
            json.dumps({**source_json(source, base), "secret": secret, "form": fields, "api": api}, indent=2)
        )
    else:
        tool = _TOOL[source.kind]
        if added:
            print(f"Added {tool} source {source.name}, writing to tenant {source.tenant}.")
            print()
            print(f"{_WHERE[source.kind]}:")
        else:
            changed = "Header value" if source.kind == "label-studio" else "Secret"
            print(f"New secret for {tool} source {source.name}; the old one is refused from now on.")
            print()
            print(f"In the source's webhook in {tool}, replace {changed} (the rest stays as it was):")
        width = max(len(k) for k in fields) + 2
        for label, value in fields.items():
            print(f"  {label + ':':<{width}}{value}")
        print()
        kept = (
            "the ledger keeps only its SHA-256" if source.kind == "label-studio" else "it is not shown again"
        )
        print(
            f"The secret is shown only now ({kept}); `ledger sources rotate {source.name}` makes a new one."
        )
    if source.kind == "label-studio" and _loopback(url):
        print(
            "ledger: Label Studio refuses webhook URLs on loopback unless it runs with "
            "SSRF_PROTECTION_ENABLED=false; give --base-url an address it reaches the ledger at",
            file=sys.stderr,
        )
    if added and not source.config.users:
        print(
            f"ledger: source {source.name} maps no tool users yet: each delivery naming a tool user will be "
            f"refused on the record until `ledger sources configure {source.name} --config FILE` maps them "
            "under [users]",
            file=sys.stderr,
        )


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _print_configured(source: Source, as_json: bool) -> None:
    if as_json:
        print(json.dumps(source_json(source), indent=2))
        return
    config = source.config
    print(f"Source {source.name} ({source.kind}, tenant {source.tenant}) now maps under the new config:")
    print(f"  users:     {len(config.users)} tool user(s) mapped")
    print(f"  dataset:   {config.dataset or f'{source.name}-project-<project id>'}")
    where = f"task.data.{config.item_field}" if config.item_field else "the task's image URL"
    print(f"  item:      the group 'item' of {config.item_pattern} in {where}")
    guideline = (
        f"{config.guideline_id} {config.guideline_version}" if config.guideline_id else "the tool project's"
    )
    print(f"  guideline: {guideline}")


def _print_list(sources: list[Source], base: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps([source_json(s, base) for s in sources], indent=2))
        return
    if not sources:
        print(
            "no webhook sources yet; `ledger sources add label-studio|cvat --tenant T` adds one",
            file=sys.stderr,
        )
        return
    rows = [("NAME", "KIND", "TENANT", "CREATED", "ROTATED", "USERS", "WEBHOOK URL")]
    rows += [
        (
            s.name,
            s.kind,
            s.tenant,
            format_time(s.created_at)[:19] + "Z",
            format_time(s.rotated_at)[:19] + "Z" if s.rotated_at else "-",
            str(len(s.config.users)),
            webhook_url(base, s),
        )
        for s in sources
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])

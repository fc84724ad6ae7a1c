"""`reasoning-agent providers`: every provider with its status, and why when it cannot serve."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers import ProviderRegistry

NAME = "providers"

STATUS_TEXT = {
    "available": "available",
    "missing_credentials": "missing credentials",
    "failed": "failed",
    "disabled": "disabled",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="list the providers and their status",
        description="List every provider: available, missing credentials (which variable), "
        "failed to load (and why) or disabled. The default provider is marked with '*'.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="fail (exit 1) when a plugin fails to load, as [plugins] strict = true does",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from providers import load_registry, load_settings

    registry = load_registry(load_settings(args.config), strict=args.strict)
    if args.json:
        print(json.dumps(as_json(registry), indent=2))
    else:
        print(as_table(registry))
    return 0


def as_json(registry: ProviderRegistry) -> dict[str, Any]:
    return {
        "default": registry.default_name,
        "providers": [status.as_dict() for status in registry.statuses()],
    }


def as_table(registry: ProviderRegistry) -> str:
    headers = ("NAME", "TYPE", "STATUS", "MODEL", "PLUGIN", "DETAIL")
    rows = []
    for status in registry.statuses():
        marker = "*" if status.name == registry.default_name else " "
        detail = status.reason or ""
        if status.aliases:
            alias_text = "aliases: " + ", ".join(status.aliases)
            detail = f"{detail}; {alias_text}" if detail else alias_text
        rows.append(
            (
                f"{marker}{status.name}",
                status.type,
                STATUS_TEXT.get(status.status, status.status),
                status.default_model or "-",
                status.plugin or "-",
                detail,
            )
        )
    table = [(" " + headers[0], *headers[1:]), *rows]
    widths = [max(len(row[column]) for row in table) for column in range(5)]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    source = registry.settings.source
    lines.append("")
    lines.append(f"* default provider; configuration: {source or 'none (built-in defaults)'}")
    return "\n".join(lines)

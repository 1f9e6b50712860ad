"""``kgdx keys``: make REST API keys and the settings entries that hold only their hashes."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

keys_app = typer.Typer(help="Create REST API keys (only their hashes go in settings).")

NameOption = Annotated[str, typer.Option(help="Who holds the key (letters, digits, _.@-)")]
RoleOption = Annotated[str, typer.Option(help="clinician, researcher, ingest or admin")]


def _entry(name: str, role: str, key: str):
    from pydantic import ValidationError

    from api.auth import key_entry
    from graph.errors import InputError

    try:
        return key_entry(name, role, key)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise InputError(f"bad key entry ({problems})") from None


def entry_text(entry) -> str:
    """The entry as a kgdx.toml table and as one KGDX_API_KEYS JSON item."""
    item = json.dumps(entry.model_dump())
    return (
        f"[[api_keys]]\nname = {json.dumps(entry.name)}\nrole = {json.dumps(entry.role)}\n"
        f'sha256 = "{entry.sha256}"\n\n# or in the environment (a JSON list of such items):\n'
        f"# KGDX_API_KEYS='[{item}]'\n"
    )


@keys_app.command("create")
def create_command(name: NameOption, role: RoleOption) -> None:
    """Print a new key once on stdout, and on stderr the settings entry that accepts it."""
    from api.auth import new_key

    key = new_key()
    entry = _entry(name, role, key)  # validates name and role before anything is printed
    typer.echo(key)
    typer.echo(
        "# The key above is shown once: give it to its holder now. Add to kgdx.toml:\n"
        + entry_text(entry),
        err=True,
    )


@keys_app.command("hash")
def hash_command(name: NameOption, role: RoleOption) -> None:
    """Read a key from stdin and print its settings entry (the key itself is not printed)."""
    from api.auth import KEY_SHAPE
    from graph.errors import InputError

    key = sys.stdin.readline().strip()
    if not KEY_SHAPE.fullmatch(key):
        raise InputError(
            "stdin holds no kgdx key (kgdx_ and 43 url-safe characters); "
            "make one with `kgdx keys create`"
        )
    typer.echo(entry_text(_entry(name, role, key)))


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.add_typer(keys_app, name="keys", no_args_is_help=True)

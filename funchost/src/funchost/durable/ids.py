"""Which instance ids and entity ids a task hub can hold: one check for the HTTP API and the orchestrations.

An id is a table key and a URL path segment on the Azure Storage store (and the same rules hold on SQLite,
so an app that works on one store works on the other). Azure Table keys refuse ``/``, ``\\``, ``#``, ``?``
and control characters; a segment ``.`` or ``..`` is folded away by every URL library before it reaches
storage. The 256-character bound is the Durable extension's for instance ids ("Instance IDs must be between
1 and 256 characters long"), and it keeps an entity's ``@name@key`` id well inside Azure's 1 KiB key limit.
Each function returns what is wrong (a sentence for a 400 or an orchestration failure), or None.
"""

from __future__ import annotations

MAX_ID_CHARS = 256
_FORBIDDEN = "/\\#?"
_FORBIDDEN_TEXT = "'/', '\\\\', '#', '?' or control characters"


def _characters_problem(what: str, value: str) -> str | None:
    if any(c in value for c in _FORBIDDEN) or any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in value):
        return f"{what} {value!r} contains characters a task hub cannot store ({_FORBIDDEN_TEXT})."
    if value in (".", ".."):
        return f"{what} {value!r} is not allowed: '.' and '..' are taken away from URL paths."
    return None


def instance_id_problem(instance_id: str) -> str | None:
    """Why ``instance_id`` cannot name an orchestration instance, or None."""
    if not instance_id or len(instance_id) > MAX_ID_CHARS:
        return f"Instance IDs must be between 1 and {MAX_ID_CHARS} characters long."
    if instance_id.startswith("@"):
        return f"Instance ID {instance_id!r} must not start with '@', which marks entity ids."
    return _characters_problem("Instance ID", instance_id)


def entity_id_problem(name: str, key: str) -> str | None:
    """Why an entity ``name`` and ``key`` cannot name an entity, or None."""
    if not name:
        return "An entity name must not be empty."
    if "@" in name:
        return f"Entity name {name!r} must not contain '@', which separates an entity id's name and key."
    if not key:
        return f"The key of entity '{name}' must not be empty."
    if len(name) + len(key) + 2 > MAX_ID_CHARS:
        return (f"Entity id @{name}@{key[:20]}... is {len(name) + len(key) + 2} characters long; entity ids "
                f"(@name@key) may be at most {MAX_ID_CHARS}.")
    return _characters_problem("Entity name", name) or _characters_problem(f"The key of entity '{name}'", key)

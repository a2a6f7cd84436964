"""Audit records: who did what to which object, kept in Django's admin log (LogEntry), which the audit view and
the admin's history pages read.

One service, `audit_record`, called by each service inside its own transaction: a management command, an API
call and an admin action leave the same trail, and a change that rolls back leaves no line.

Messages are stored untranslated: the message id (mark it with `gettext_noop`) and its parameters, as JSON in
`change_message`. `audit_message(entry)` renders one in the reader's language. Lines written by the admin's own
forms (Django's JSON) and older plain-text lines render as Django renders them.
"""

import json
from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext, override

AUDIT_KEY = "audit"
SYSTEM_USERNAME = "system"  # the actor of changes made by a command or a task that no person started

__all__ = ["ADDITION", "CHANGE", "DELETION", "audit_actor", "audit_message", "audit_record"]


def _untranslated(value) -> str:
    with override(None):  # a lazy string gives its message id
        return str(value)


def _stored(value):
    return value if isinstance(value, int | float) else _untranslated(value)


def _payload(message, plural, count, params: dict | None) -> list[dict]:
    params = params or {}
    item = {
        "message": _untranslated(message),
        # Lazy (translatable) parameters are stored as their message id and translated when read.
        "params": {key: _stored(value) for key, value in params.items()},
        "translate": sorted(key for key, value in params.items() if isinstance(value, Promise)),
    }
    if plural is not None:
        item.update(plural=_untranslated(plural), count=count)
    return [{AUDIT_KEY: item}]


def audit_record(
    *,
    actor,
    message,
    objects: Iterable[models.Model] = (),
    target: tuple[ContentType, str, str] | None = None,
    action: int = CHANGE,
    params: dict | None = None,
    plural=None,
    count: int | None = None,
) -> int:
    """Write one admin-log line per object (or one for `target`: content type, object id, text) in the caller's
    transaction. `message` % `params` is what a reader sees, in their language; `plural` and `count` pick the
    plural form. Returns the lines written."""
    change_message = _payload(message, plural, count, params)
    if target is not None:
        content_type, object_id, object_repr = target
        LogEntry.objects.create(
            user_id=actor.pk,
            content_type=content_type,
            object_id=object_id,
            object_repr=object_repr[:200],
            action_flag=action,
            change_message=json.dumps(change_message),
        )
        return 1
    objects = list(objects)
    if not objects:
        return 0
    entries = LogEntry.objects.log_actions(
        actor.pk, objects, action, change_message=change_message, single_object=len(objects) == 1
    )
    return 1 if isinstance(entries, LogEntry) else len(entries)


def audit_actor(username: str | None = None):
    """The user a command's changes are recorded under: the one named, or the inactive `system` user."""
    users = get_user_model()
    if username:
        return users.objects.get(**{users.USERNAME_FIELD: username})
    actor, created = users.objects.get_or_create(
        **{users.USERNAME_FIELD: SYSTEM_USERNAME}, defaults={"is_active": False}
    )
    if created:
        actor.set_unusable_password()
        actor.save(update_fields=["password"])
    return actor


def audit_message(entry: LogEntry) -> str:
    """The entry's message in the active language."""
    raw = entry.change_message or ""
    try:
        items = json.loads(raw) if raw.startswith("[") else None
    except ValueError:
        items = None
    if not items or not all(isinstance(item, dict) and AUDIT_KEY in item for item in items):
        return entry.get_change_message()
    return " ".join(_render(item[AUDIT_KEY]) for item in items)


def _render(item: dict) -> str:
    translate = set(item.get("translate") or ())
    params = {key: gettext(value) if key in translate else value for key, value in (item.get("params") or {}).items()}
    if item.get("plural") is not None:
        text = ngettext(item["message"], item["plural"], item.get("count") or 0)
    else:
        text = gettext(item["message"])
    try:
        return text % params if params else text
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: the stored id still reads
        return item["message"] % params if params else item["message"]

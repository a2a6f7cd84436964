"""The one audit service: written in the caller's transaction, stored untranslated, read in the reader's language."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy, gettext_noop

from backoffice.auditing import audit_actor, audit_message, audit_record

pytestmark = pytest.mark.django_db


def test_a_line_is_stored_untranslated_and_read_in_the_readers_language(admin_user):
    with translation.override("zh-hans"):  # the writer's language must not end up in the record
        audit_record(actor=admin_user, objects=[admin_user], message=gettext_noop("Change"), params={})
        audit_record(
            actor=admin_user, objects=[admin_user], message="%(what)s", params={"what": gettext_lazy("History")}
        )

    first, second = LogEntry.objects.order_by("id")
    assert json.loads(first.change_message)[0]["audit"]["message"] == "Change"
    assert json.loads(second.change_message)[0]["audit"]["params"] == {"what": "History"}
    with translation.override("zh-hans"):
        assert (audit_message(first), audit_message(second)) == ("修改", "历史")
    with translation.override("en"):
        assert (audit_message(first), audit_message(second)) == ("Change", "History")


def test_plural_forms_follow_the_count(admin_user):
    for count in (1, 3):
        audit_record(
            actor=admin_user,
            objects=[admin_user],
            message=gettext_noop("%(n)d row"),
            plural=gettext_noop("%(n)d rows"),
            count=count,
            params={"n": count},
        )
    assert [audit_message(e) for e in LogEntry.objects.order_by("id")] == ["1 row", "3 rows"]


def test_a_change_that_rolls_back_leaves_no_line(admin_user):
    with transaction.atomic():
        audit_record(actor=admin_user, objects=[admin_user], message="x")
        transaction.set_rollback(True)
    assert not LogEntry.objects.exists()


def test_older_plain_lines_and_the_admins_own_json_still_read(admin_user):
    plain = LogEntry.objects.create(user=admin_user, action_flag=2, object_repr="x", change_message="Did a thing")
    django = LogEntry.objects.create(
        user=admin_user, action_flag=2, object_repr="x", change_message='[{"changed": {"fields": ["Name"]}}]'
    )
    assert (audit_message(plain), audit_message(django)) == ("Did a thing", "Changed Name.")


def test_commands_act_as_an_inactive_system_user_unless_told_otherwise(admin_user):
    system = audit_actor()
    assert (system.username, system.is_active, system.has_usable_password()) == ("system", False, False)
    assert audit_actor() == system
    assert audit_actor(admin_user.username) == admin_user


def test_the_audit_view_and_the_object_history_show_each_reader_their_language(client, admin_user):
    audit_record(actor=admin_user, objects=[admin_user], message=gettext_noop("Change"))
    client.force_login(admin_user)
    history = f"/admin/auth/user/{admin_user.pk}/history/"

    for url in ("/admin/audit/", history):
        chinese = client.get(url, headers={"Accept-Language": "zh-hans"}).content.decode()
        english = client.get(url, headers={"Accept-Language": "en"}).content.decode()
        assert (">修改</td>" in chinese, ">Change</td>" in english) == (True, True), url

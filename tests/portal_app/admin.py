from django.contrib import admin

from backoffice.extension_point import ExportAdminMixin
from tests.portal_app.models import Note


@admin.register(Note)
class NoteAdmin(ExportAdminMixin, admin.ModelAdmin):  # an export target's admin says so by this mixin
    list_display = ("title", "words")
    list_filter = ("words",)
    search_fields = ("title",)

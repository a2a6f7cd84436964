from django.db import models
from django.utils.translation import gettext_lazy as _


class ScheduleControl(models.Model):
    """No table: carries the schedule permission django-celery-beat's models lack (Ops may enable and
    disable schedules without being allowed to edit them)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("toggle_periodictask", _("Can enable and disable periodic schedules"))]

    def __str__(self):
        return str(self._meta.verbose_name)

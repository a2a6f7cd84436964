"""Operations: the dashboard's cached figures, and the permissions that guard workers and Flower."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _


class DashboardPanel(models.Model):
    """The figures of one dashboard panel, computed by `ops.dashboard_refresh`; the page reads only these."""

    key = models.CharField(_("panel"), max_length=40, primary_key=True)
    data = models.JSONField(_("figures"), default=dict, encoder=DjangoJSONEncoder)
    refreshed_at = models.DateTimeField(_("refreshed at"))
    duration_ms = models.PositiveIntegerField(_("time to compute (ms)"), default=0)

    class Meta:
        verbose_name = _("dashboard panel")
        verbose_name_plural = _("dashboard panels")
        default_permissions = ()  # written by the refresh task only; nobody edits figures

    def __str__(self) -> str:
        return self.key


class Worker(models.Model):
    """A Celery worker, as Celery's control API sees it. No table: it carries the ops permissions and gives
    control actions a content type for the admin log (the object id is the worker's hostname)."""

    hostname = models.CharField(_("hostname"), max_length=200, primary_key=True)

    class Meta:
        managed = False
        verbose_name = _("Celery worker")
        verbose_name_plural = _("Celery workers")
        default_permissions = ()
        permissions = [
            ("view_ops", _("Can watch workers, queues and Flower")),
            ("control_workers", _("Can control workers: shutdown, pool size, revoke, rate limits")),
        ]

    def __str__(self) -> str:
        return self.hostname

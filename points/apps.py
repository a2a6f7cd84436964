from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self):
        from points import checks  # noqa: F401 - registers the system checks
        from points.models import Action
        from points.signals import action_saved

        post_save.connect(action_saved, sender=Action, dispatch_uid="points_action_saved")
        post_delete.connect(action_saved, sender=Action, dispatch_uid="points_action_deleted")

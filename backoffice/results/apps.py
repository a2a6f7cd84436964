from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResultsConfig(AppConfig):
    name = "backoffice.results"
    label = "portal_results"
    verbose_name = _("Task results")

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.ops.services import CONTROL_ACTIONS


class ControlForm(forms.Form):
    action = forms.ChoiceField(label=_("action"), choices=[(action, action) for action in CONTROL_ACTIONS])
    worker = forms.CharField(label=_("worker"), max_length=200, required=False)
    task_id = forms.CharField(label=_("task id"), max_length=255, required=False)
    task_name = forms.CharField(label=_("task name"), max_length=255, required=False)
    rate = forms.RegexField(
        label=_("rate"),
        regex=r"^\d+(/[smh])?$",
        max_length=20,
        required=False,
        help_text=_("tasks per second, minute or hour, e.g. 10/m; 0 removes the limit"),
    )
    terminate = forms.BooleanField(label=_("terminate if running"), required=False)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in ("pool_grow", "pool_shrink", "shutdown") and not data.get("worker"):
            self.add_error("worker", _("Choose a worker for this action."))
        if action == "revoke" and not data.get("task_id"):
            self.add_error("task_id", _("Give the id of the task to revoke."))
        if action == "rate_limit" and not (data.get("task_name") and data.get("rate")):
            self.add_error("rate", _("A rate limit needs a task name and a rate."))
        return data

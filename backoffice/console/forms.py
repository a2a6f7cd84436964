from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from backoffice.task_registry import (
    parse_json_args,
    parse_json_kwargs,
    validate_queue,
    validate_task_call,
    worker_queues,
)


class RunTaskForm(forms.Form):
    WHEN_CHOICES = (("now", _("Now")), ("countdown", _("After a countdown")), ("eta", _("At a date and time")))

    args = forms.CharField(
        label=_("Positional arguments (JSON list)"),
        initial="[]",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    kwargs = forms.CharField(
        label=_("Keyword arguments (JSON object)"),
        initial="{}",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )
    queue = forms.ChoiceField(
        label=_("Queue"),
        required=False,
        help_text=_("Only queues a worker of this deployment consumes."),
    )
    when = forms.ChoiceField(label=_("When"), choices=WHEN_CHOICES, initial="now", widget=forms.RadioSelect)
    countdown = forms.IntegerField(label=_("Countdown (seconds)"), min_value=0, required=False)
    eta = forms.DateTimeField(
        label=_("Date and time"),
        required=False,
        help_text=_("In the portal's time zone."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )

    def __init__(self, *args, task_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_name = task_name
        self.fields["queue"].choices = [("", _("the task's own queue"))] + [(q, q) for q in worker_queues()]
        self.fields["queue"].validate = validate_queue  # one message for an unknown queue, here and in schedules

    def clean_args(self):
        return parse_json_args(self.cleaned_data.get("args"))

    def clean_kwargs(self):
        return parse_json_kwargs(self.cleaned_data.get("kwargs"))

    def clean(self):
        data = super().clean()
        when = data.get("when")
        if when == "now" and data.get("countdown") is not None:
            when = data["when"] = "countdown"  # a countdown typed in means it, whichever radio was left on
        if when == "countdown" and data.get("countdown") is None:
            self.add_error("countdown", _("Give the countdown in seconds."))
        if when == "eta" and data.get("eta") is None:
            self.add_error("eta", _("Give the date and time to run at."))
        if "args" in data and "kwargs" in data:
            try:
                validate_task_call(self.task_name, data["args"], data["kwargs"])
            except ValidationError as exc:
                self.add_error("kwargs" if data["kwargs"] else "args", exc)
        return data

    def schedule(self) -> dict:
        """The queue and timing arguments for backoffice.console.services.task_run."""
        when = self.cleaned_data["when"]
        return {
            "queue": self.cleaned_data.get("queue") or None,
            "countdown": self.cleaned_data["countdown"] if when == "countdown" else None,
            "eta": self.cleaned_data["eta"] if when == "eta" else None,
        }

"""The schedule form: registered tasks only, JSON arguments that bind to the task's signature."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from backoffice.task_registry import (
    parse_json_args,
    parse_json_kwargs,
    staff_task,
    staff_tasks,
    task_signature,
    validate_queue,
    validate_task_call,
    worker_queues,
)


class StaffTaskField(forms.ChoiceField):
    """The tasks staff may schedule; an internal or unknown one is refused with a message saying which."""

    def __init__(self, **kwargs):
        super().__init__(choices=self._choices_now, **kwargs)

    @staticmethod
    def _choices_now():
        return [("", "---------")] + [(name, f"{name}{task_signature(task)}") for name, task in staff_tasks().items()]

    def validate(self, value):
        forms.Field.validate(self, value)  # required; the choice itself is checked with a precise message
        if value:
            staff_task(value)


class WorkerQueueField(forms.ChoiceField):
    """Blank (the task's own route) or a queue a worker of this deployment consumes."""

    def __init__(self, **kwargs):
        super().__init__(choices=self._choices_now, required=False, **kwargs)

    @staticmethod
    def _choices_now():
        return [("", _("the task's own queue"))] + [(name, name) for name in worker_queues()]

    def validate(self, value):
        validate_queue(value)

    def clean(self, value):
        return super().clean(value) or None


class PeriodicTaskForm(forms.ModelForm):
    task = StaffTaskField(label=_("Task"), help_text=_("Only tasks that staff may schedule."))
    queue = WorkerQueueField(label=_("Queue"), help_text=_("Only queues a worker of this deployment consumes."))
    # The interval as this schedule's own two fields: an interval row is shared by every schedule that runs that
    # often, so editing the row (the stock admin's pencil) would change the others too.
    every = forms.IntegerField(label=_("Every"), min_value=1, required=False)
    period = forms.ChoiceField(
        label=_("Period"), choices=[("", "---------"), *IntervalSchedule.PERIOD_CHOICES], required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        interval = self.instance.interval if self.instance.pk and self.instance.interval_id else None
        if interval is not None:
            self.initial.setdefault("every", interval.every)
            self.initial.setdefault("period", interval.period)
        if "interval" in self.fields:
            self.fields["interval"].required = False

    class Meta:
        model = PeriodicTask
        fields = (
            "name",
            "task",
            "description",
            "enabled",
            "interval",
            "crontab",
            "solar",
            "clocked",
            "args",
            "kwargs",
            "queue",
            "priority",
            "start_time",
            "expires",
            "expire_seconds",
            "one_off",
        )
        widgets = {
            "args": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "kwargs": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }
        help_texts = {
            "args": _('A JSON list, e.g. [1, "a"].'),
            "kwargs": _('A JSON object, e.g. {"days": 7}.'),
        }

    def clean_args(self):
        return self.cleaned_data.get("args") or "[]"

    def clean_kwargs(self):
        return self.cleaned_data.get("kwargs") or "{}"

    def clean(self):
        data = super().clean()
        self._clean_interval(data)
        args = kwargs = None
        try:
            args = parse_json_args(data.get("args"))
        except ValidationError as exc:
            self.add_error("args", exc)
        try:
            kwargs = parse_json_kwargs(data.get("kwargs"))
        except ValidationError as exc:
            self.add_error("kwargs", exc)
        if data.get("task") and args is not None and kwargs is not None:
            try:
                validate_task_call(data["task"], args, kwargs)
            except ValidationError as exc:
                self.add_error("kwargs" if kwargs else "args", exc)
        if data.get("expire_seconds") is not None and data.get("expires"):
            raise ValidationError(_("Set either an expiry time or expiry seconds, not both."))
        return data

    def _clean_interval(self, data) -> None:
        if "every" not in self.fields:
            return
        every, period = data.get("every"), data.get("period")
        if every is None and not period:
            if "interval" not in self.fields:
                self.instance.interval = None  # cleared: another kind of schedule is set instead
            return
        if every is None or not period:
            self.add_error("every" if every is None else "period", _("Give both how many and of what."))
            return
        from backoffice.schedules.services import interval_schedule_for  # services import the admin's forms

        data["interval"] = self.instance.interval = interval_schedule_for(every=every, period=period)

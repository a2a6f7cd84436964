import factory

from backoffice.alerts.models import AlertRule


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    name = factory.Sequence(lambda n: f"rule {n}")
    kind = AlertRule.Kind.TASK_FAILURES
    threshold = 3
    window_seconds = 300
    reminders_per_hour = 2
    email_to = "oncall@example.com"

import factory
from django.contrib.auth import get_user_model


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("pw")


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class ActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "points.Action"

    code = factory.Sequence(lambda n: f"action-{n}")
    name = factory.Sequence(lambda n: f"Action {n}")
    method = "POST"
    path_pattern = factory.Sequence(lambda n: rf"^/api/things-{n}/(?P<business_id>\d+)/$")
    status = "active"


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "points.Rule"

    name = factory.Sequence(lambda n: f"Rule {n}")
    action = factory.SubFactory(ActionFactory)
    points = 1
    kind = "every"
    period = "day"
    required_count = 1
    status = "active"

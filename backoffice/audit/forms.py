from django import forms
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _

ACTION_CHOICES = [("", _("any action")), (ADDITION, _("added")), (CHANGE, _("changed")), (DELETION, _("deleted"))]


class AuditFilterForm(forms.Form):
    user = forms.ModelChoiceField(
        label=_("who"),
        queryset=get_user_model().objects.filter(is_staff=True).order_by("username"),
        required=False,
        empty_label=_("anyone"),
        to_field_name="username",
    )
    action = forms.TypedChoiceField(
        label=_("action"), choices=ACTION_CHOICES, coerce=int, required=False, empty_value=None
    )
    content_type = forms.ModelChoiceField(
        label=_("what"),
        queryset=ContentType.objects.order_by("app_label", "model"),
        required=False,
        empty_label=_("anything"),
    )
    since = forms.DateField(label=_("from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(label=_("text"), required=False, max_length=200)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date is before the start date."))
        return data

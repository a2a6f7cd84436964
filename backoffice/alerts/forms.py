from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.alerts.services import SILENCE_MAX


class SilenceForm(forms.Form):
    minutes = forms.IntegerField(
        label=_("Silence for (minutes)"),
        min_value=1,
        max_value=int(SILENCE_MAX.total_seconds() // 60),
        initial=60,
    )
    reason = forms.CharField(label=_("Why"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

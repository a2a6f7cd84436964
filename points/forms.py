from django import forms
from django.utils.translation import gettext_lazy as _


class AdjustmentForm(forms.Form):
    amount = forms.IntegerField(label=_("Points"), help_text=_("Positive to give points, negative to take them back."))
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("An adjustment moves at least one point."))
        return amount

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Say why: the reason is kept with the entry."))
        return reason


class ReversalForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class SimulationForm(forms.Form):
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=366, initial=7)


class UrlTestForm(forms.Form):
    method = forms.ChoiceField(choices=[(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")])
    path = forms.CharField(max_length=500)
    pattern = forms.CharField(max_length=500, required=False)

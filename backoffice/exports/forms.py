from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.exports.models import ExportJob
from backoffice.exports.registry import ExportTarget


class ExportForm(forms.Form):
    """Columns and options of a new export; the rows are the changelist's (query_string)."""

    query_string = forms.CharField(required=False, widget=forms.HiddenInput)
    columns = forms.MultipleChoiceField(label=_("Columns"), widget=forms.CheckboxSelectMultiple)
    file_format = forms.ChoiceField(
        label=_("Format"),
        choices=ExportJob.Format.choices,
        initial=ExportJob.Format.CSV,
        required=False,  # an older form without it means CSV
        widget=forms.RadioSelect,
    )
    include_bom = forms.BooleanField(
        label=_("UTF-8 with BOM"), required=False, help_text=_("Lets Excel detect UTF-8 when opening the file.")
    )
    notify_by_email = forms.BooleanField(label=_("Email me when it is ready"), required=False)

    def clean_file_format(self):
        return self.cleaned_data.get("file_format") or ExportJob.Format.CSV

    def __init__(self, *args, target: ExportTarget, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["columns"].choices = [(column.path, column.label) for column in target.columns]
        if not self.is_bound:
            self.initial.setdefault(
                "columns", list(target.default_columns) or [column.path for column in target.columns]
            )

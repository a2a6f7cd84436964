from django.core import checks

from backoffice.exports.registry import check_registry


@checks.register()
def export_registry_check(app_configs, **kwargs):
    return [checks.Error(problem, id="exports.E001") for problem in check_registry()]

"""Stored task results are history: every role reads them; retry and revoke live in the console's roles."""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

ROLE_PERMISSIONS = {
    OPERATORS: ["django_celery_results.view_taskresult"],
    ANALYSTS: ["django_celery_results.view_taskresult", "django_celery_results.view_groupresult"],
    OPS: ["django_celery_results.view_taskresult", "django_celery_results.view_groupresult"],
}

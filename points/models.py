"""Points: accounts and their append-only ledger."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    """One per user: the balance, kept equal to the sum of the user's ledger entries."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="points_account",
        verbose_name=_("user"),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="points_account_balance_gte_0"),
        ]
        permissions = [("adjust_account", _("Can adjust a points balance by hand"))]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance})"


class LedgerEntry(models.Model):
    """One movement of points. Never updated or deleted: a correction is a new (reversal) entry."""

    class Kind(models.TextChoices):
        AWARD = "award", _("award")
        REDEEM = "redeem", _("redeem")
        REFUND = "refund", _("refund")
        ADJUST = "adjust", _("adjustment")
        REVERSAL = "reversal", _("reversal")
        EXPIRE = "expire", _("expiry")

    serial_number = models.CharField(_("serial number"), max_length=32, unique=True)
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    amount = models.BigIntegerField(_("amount"))
    balance_before = models.BigIntegerField(_("balance before"))
    balance_after = models.BigIntegerField(_("balance after"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # A plain string, not a foreign key: points never imports orders.
    order_number = models.CharField(_("order number"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
    )

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "id"], name="points_ledger_account_id")]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_after=F("balance_before") + F("amount")),
                name="points_ledger_after_is_before_plus_amount",
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="points_ledger_after_gte_0"),
            models.CheckConstraint(condition=~Q(amount=0), name="points_ledger_amount_nonzero"),
            models.UniqueConstraint(fields=["reverses"], name="points_ledger_one_reversal_per_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.serial_number} {self.amount:+d}"

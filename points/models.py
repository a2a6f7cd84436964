"""Points: actions that count, rules that award, progress, accounts and their append-only ledger."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

BUSINESS_ID_GROUP = "business_id"  # the named group of a path pattern that carries the business id


class Status(models.TextChoices):
    DRAFT = "draft", _("draft")
    ACTIVE = "active", _("active")
    RETIRED = "retired", _("retired")


class ActiveManager(models.Manager):
    """Rows not soft-deleted."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class LifecycleModel(models.Model):
    """What staff-edited definitions share (points tasks and rules): a status from draft through active to
    retired, a soft delete (records keep pointing at a deleted row), and when the row was made and changed."""

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    all_objects = models.Manager()  # the default: the admin also lists soft-deleted rows
    objects = ActiveManager()

    class Meta:
        abstract = True


class Action(LifecycleModel):
    """A user action that counts (the seed's TaskConfig, shown to staff as "points task")."""

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    method = models.CharField(_("HTTP method"), max_length=8, choices=Method.choices, default=Method.POST)
    path_pattern = models.CharField(
        _("path pattern"),
        max_length=500,
        help_text=_(
            "A regular expression matched against the whole request path, e.g. ^/api/posts/(?P<business_id>\\d+)/$ ."
            " The optional named group business_id carries the business id."
        ),
    )
    success_field = models.CharField(
        _("success JSON field"),
        max_length=100,
        blank=True,
        help_text=_("Empty: any 2xx response counts. Else a field of the JSON body (dots for nesting), e.g. code."),
    )
    success_value = models.CharField(
        _("success value"), max_length=100, blank=True, help_text=_("The field's value that means success, e.g. 0.")
    )

    class Meta:
        verbose_name = _("points task")
        verbose_name_plural = _("points tasks")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        from points.matching import PatternError, pattern_compile

        try:
            compiled = pattern_compile(self.path_pattern)
        except PatternError as exc:
            errors["path_pattern"] = _(
                "Not a valid regular expression for linear-time matching (RE2 syntax): %(error)s."
                " Back-references, look-arounds and very large repetitions are not available."
            ) % {"error": exc}
        else:
            unknown = set(compiled.groupindex) - {BUSINESS_ID_GROUP}
            if unknown:
                errors["path_pattern"] = _("Only the named group business_id is allowed, not: %(names)s") % {
                    "names": ", ".join(sorted(unknown))
                }
        if self.success_value and not self.success_field:
            errors["success_field"] = _("A success value needs the JSON field it is read from.")
        if errors:
            raise ValidationError(errors)


class ActionRecord(models.Model):
    """One completed action by one user (the seed's UserTaskRecord). The event id makes replays harmless."""

    event_id = models.UUIDField(_("event id"), unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="records", verbose_name=_("action"))
    business_id = models.CharField(_("business id"), max_length=100, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("action record")
        verbose_name_plural = _("action records")
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "action", "business_id"], name="points_record_user_business")]

    def __str__(self) -> str:
        return f"{self.action_id}:{self.user_id}:{self.event_id}"


class PendingEvent(models.Model):
    """The outbox: an event captured by the middleware, durable before the response leaves, until applied."""

    event_id = models.UUIDField(_("event id"), unique=True)
    user_id = models.BigIntegerField(_("user id"))  # no FK: the capture insert must stay one cheap statement
    action_id = models.BigIntegerField(_("action id"))
    business_id = models.CharField(_("business id"), max_length=100, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    language = models.CharField(_("language"), max_length=16, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("captured at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("pending event")
        verbose_name_plural = _("pending events")
        ordering = ["id"]

    def __str__(self) -> str:
        return str(self.event_id)


class Rule(LifecycleModel):
    """How completions of an action earn points (the seed's ScoreRule)."""

    class Kind(models.TextChoices):
        EVERY = "every", _("every completion")
        COUNT = "count", _("N completions in a period")
        STREAK = "streak", _("N consecutive periods")

    class Period(models.TextChoices):
        DAY = "day", _("day")
        WEEK = "week", _("week")
        MONTH = "month", _("month")
        YEAR = "year", _("year")
        NONE = "none", _("all time")

    class CapScope(models.TextChoices):
        PERIOD = "period", _("per period")
        OVERALL = "overall", _("overall")

    name = models.CharField(_("name"), max_length=200)
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="rules", verbose_name=_("points task"))
    points = models.PositiveIntegerField(_("points"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.EVERY)
    period = models.CharField(_("period"), max_length=8, choices=Period.choices, default=Period.DAY)
    required_count = models.PositiveIntegerField(
        _("required count"), default=1, help_text=_("Completions (count) or consecutive periods (streak) needed.")
    )
    allow_repeat_business_id = models.BooleanField(
        _("same business id counts again"),
        default=True,
        help_text=_("Off: a second completion on the same business id (e.g. the same post) does not count."),
    )
    awardee_cap = models.PositiveIntegerField(
        _("awardee cap"), null=True, blank=True, help_text=_("At most this many users are awarded.")
    )
    awardee_cap_scope = models.CharField(
        _("awardee cap applies"), max_length=8, choices=CapScope.choices, default=CapScope.PERIOD
    )
    per_user_cap = models.PositiveIntegerField(
        _("per-user cap"), null=True, blank=True, help_text=_("At most this many awards per user per period.")
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["name"]
        permissions = [
            ("import_rule", _("Can import rules")),
            ("export_rule", _("Can export rules")),
            ("simulate_rule", _("Can simulate a rule over recorded actions")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="points_rule_points_gt_0"),
            models.CheckConstraint(condition=Q(required_count__gt=0), name="points_rule_required_gt_0"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(starts_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="points_rule_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end must come after the start.")
        if self.kind == self.Kind.EVERY and self.required_count != 1:
            errors["required_count"] = _("A rule that awards every completion needs a required count of 1.")
        if self.kind == self.Kind.STREAK:
            if self.period == self.Period.NONE:
                errors["period"] = _("A streak counts consecutive periods: choose day, week, month or year.")
            if self.per_user_cap is not None:
                errors["per_user_cap"] = _(
                    "A streak awards at most once per period already; leave the per-user cap empty."
                )
        if self.awardee_cap == 0:
            errors["awardee_cap"] = _("A cap of 0 awards nobody: leave it empty for no cap, or retire the rule.")
        if self.per_user_cap == 0:
            errors["per_user_cap"] = _("A cap of 0 awards nobody: leave it empty for no cap, or retire the rule.")
        if (
            self.awardee_cap is not None
            and self.awardee_cap_scope == self.CapScope.PERIOD
            and self.period == self.Period.NONE
        ):
            errors["awardee_cap_scope"] = _("The rule has no period: choose an overall cap.")
        if self.points == 0:
            errors["points"] = _("A rule awards at least 1 point.")
        if errors:
            raise ValidationError(errors)

    def in_effect_at(self, moment) -> bool:
        return (self.starts_at is None or self.starts_at <= moment) and (self.ends_at is None or moment < self.ends_at)


class RuleProgress(models.Model):
    """A user's progress on a rule (the seed's UserScoreInfo): one row per period, or per streak."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="progress", verbose_name=_("rule"))
    period_start = models.DateField(_("period start"), help_text=_("For a streak: its first period."))
    last_period = models.DateField(_("last period counted"))
    count = models.PositiveIntegerField(_("count"), default=0, help_text=_("Completions, or streak length."))
    awards = models.PositiveIntegerField(_("awards"), default=0)
    last_award_period = models.DateField(_("last award period"), null=True, blank=True)
    deadline = models.DateTimeField(_("deadline"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("rule progress")
        verbose_name_plural = _("rule progress")
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "rule", "period_start"], name="points_progress_one_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.user_id}:{self.period_start}"

    @property
    def achieved(self) -> bool:
        return self.awards > 0


class RuleAwardees(models.Model):
    """How many distinct users a capped rule has awarded in a period (or overall): the row the cap locks."""

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()  # the epoch date for an overall cap
    awardees = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "period_start"], name="points_awardees_one_per_period")]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.period_start}={self.awardees}"


class CheckIn(models.Model):
    """The demo host site's daily check-in (a business row, not points): one per user per local day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="points_checkin_one_per_day")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}"


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
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account"))
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
    rule = models.ForeignKey(
        Rule, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("rule")
    )
    progress = models.ForeignKey(
        RuleProgress, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("progress")
    )
    source = models.ForeignKey(
        ActionRecord, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("source")
    )
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

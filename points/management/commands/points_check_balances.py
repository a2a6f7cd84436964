"""Verify every points account against its ledger, and that every check-in has its points event; exit 1 on any
mismatch. `--fix` repairs balances, after confirmation."""

from django.core.management.base import BaseCommand, CommandError

from backoffice.auditing import audit_actor
from points.selectors import checkins_without_event
from points.services import balances_check, balances_fix


class Command(BaseCommand):
    help = "Check every points account's balance against its ledger (exit 1 on a mismatch; --fix to repair)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix", action="store_true", help="set mismatched balances to their ledger's sum (asks first)"
        )
        parser.add_argument(
            "--by", metavar="USERNAME", help="the staff member the repairs are audited under (default: system)"
        )
        parser.add_argument(
            "--no-input", "--noinput", action="store_false", dest="interactive", help="do not ask before --fix"
        )

    def handle(self, *args, fix: bool, interactive: bool, by: str | None = None, **options):
        unrecorded = checkins_without_event()
        for checkin in unrecorded:
            self.stdout.write(f"check-in {checkin.pk} (user {checkin.user_id}, {checkin.day}): no points event")
        unrecorded_error = (
            f"{len(unrecorded)} check-in(s) have no points event (answered as successes that earned nothing)."
        )
        mismatches = balances_check()
        if not mismatches:
            if unrecorded:
                raise CommandError(unrecorded_error)
            self.stdout.write(self.style.SUCCESS("All points balances match their ledgers."))
            return
        for m in mismatches:
            self.stdout.write(
                f"account {m.account_id} (user {m.user_id}): balance {m.balance}, ledger sum {m.ledger_sum}, "
                f"last balance_after {m.last_balance_after}"
            )
        if not fix:
            raise CommandError(f"{len(mismatches)} account(s) differ from their ledger; --fix repairs them.")
        if interactive:
            answer = input(f"Set {len(mismatches)} balance(s) to their ledger's sum? Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing changed.")
        fixed = balances_fix(account_ids=[m.account_id for m in mismatches], actor=audit_actor(by))
        left = balances_check()
        self.stdout.write(f"fixed {fixed} account(s)")
        if left:
            raise CommandError(f"{len(left)} account(s) still differ (a broken chain needs a person, not --fix).")
        self.stdout.write(self.style.SUCCESS("All points balances match their ledgers."))
        if unrecorded:
            raise CommandError(unrecorded_error)

import json
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.progress import ProgressBar
from accounts.provisioning import COLUMNS, ProvisioningConflict, detect_format, provision


class Command(BaseCommand):
    help = (
        "Create or update accounts from a CSV or JSON file (by extension; '-' reads standard input, with "
        "--input-format). One row per account: " + ", ".join(COLUMNS) + ". 'parent' is an account id or the "
        "external_id of another row or of an existing account, so one file builds a nested tree in any order. "
        "Every row is checked first; with any problem nothing is written and the exit status is 1. Otherwise all "
        "rows apply in one transaction. Reruns find earlier accounts by external_id (or id): unchanged rows are "
        "left alone, changed ones updated (--no-update: reported only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .json file, or - for standard input.")
        parser.add_argument("--input-format", choices=("csv", "json"),
                            help="The file's format when its name does not tell (required with -).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Check everything and print what would be created, updated or left alone.")
        parser.add_argument("--update", action=__import__("argparse").BooleanOptionalAction, default=True,
                            help="Update existing accounts whose row changed (default); --no-update only "
                                 "reports them.")
        parser.add_argument("--format", choices=("text", "json"), default="text", dest="output_format",
                            help="json: one machine-readable summary on standard output.")
        parser.add_argument("--as-staff", metavar="EMAIL",
                            help="A staff user to name in the audit trail (default: the platform).")

    def handle(self, *args, **options):
        path = options["file"]
        fmt = options["input_format"]
        if not fmt:
            if path == "-":
                raise CommandError("Reading standard input needs --input-format csv or json.")
            try:
                fmt = detect_format(path)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8-sig").read()  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8.") from exc
        staff = self._staff(options["as_staff"])
        bar = ProgressBar(self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr)
        try:
            report = provision(text, fmt=fmt, dry_run=options["dry_run"], update=options["update"], staff=staff,
                               progress=bar)
        except (ProvisioningConflict, ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", None) or [str(exc)])) from exc
        finally:
            bar.close()
        if options["output_format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self._print(report, options)
        if report.problems:
            raise CommandError(f"{len(report.problems)} problem(s) in the file: nothing was written.")

    def _staff(self, email):
        if not email:
            return None
        user = get_user_model().objects.filter(email__iexact=email, is_staff=True, is_active=True).first()
        if user is None:
            raise CommandError(f"No active staff user {email}.")
        return user

    def _print(self, report, options):
        for problem in report.problems:
            self.stderr.write(report.describe(problem))
        verbose = options["verbosity"] >= 2 or options["dry_run"]
        if not report.problems and (verbose or options["verbosity"] >= 1):
            for o in report.outcomes:
                if o.action == "unchanged" and not verbose:
                    continue
                if o.action == "create" and not verbose:
                    continue
                label = {"create": "create", "update": "update", "unchanged": "unchanged", "differs": "differs"}
                where = f" under {o.parent}" if o.parent and o.action == "create" else ""
                detail = f": {'; '.join(o.changes)}" if o.changes else ""
                self.stdout.write(f"{report.unit} {o.line}: {label[o.action]} {o.name}"
                                  f"{f' ({o.external_id})' if o.external_id else ''}{where}{detail}")
        if not report.problems:
            self.stdout.write(self.style.SUCCESS(report.summary()))

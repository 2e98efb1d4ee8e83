"""Bulk provisioning: a file of accounts (CSV or JSON), validated as a whole, then applied in one transaction.

One row is one account. ``external_id`` (the customer's own identifier, unique within a tree) or ``id`` (our
account id) finds what an earlier run created, so a rerun leaves unchanged rows alone and updates changed
ones instead of duplicating them. ``parent`` names an account id, or the ``external_id`` of another row or of
an existing account, so one file builds a nested tree in any row order.

The same rules as one subaccount created on a page hold (``accounts.services.subaccount_create``): depth,
sibling-unique names, the parent's plan and suspension, access categories never above what the parent holds
(R1/R5), limits never above the parent's lineage (R1). What differs is the cost: the file is validated with a
fixed number of queries whatever its length, and new accounts are written level by level with
``bulk_create`` (materialized paths computed here, as treebeard would), so 10,000 rows take seconds.

``provision(text, fmt=...)`` returns a ``Report``: every row's outcome (create, update, unchanged, or "differs"
under ``update=False``) and every problem with its line (JSON: item) number and column. With any problem
nothing is written; ``dry_run`` never writes. ``export_rows`` writes the same format back.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.db.models.functions import Lower

from billing.models import Plan, Subscription
from members.emails import clean_email
from members.grants import limit_ceiling
from members.roles import RoleId, get_role

from .audit import staff_acting
from .downloads import FORMULA_PREFIXES
from .models import LIMIT_NAMES, NAME_MAX_LENGTH, NAME_MIN_LENGTH, Account, AuditEvent
from .names import name_key, normalize_name
from .params import uuid_or_none
from .permissions import CATEGORIES, CATEGORY_BY_KEY, Level, Matrix, clean_matrix, compose, stored

LIMIT_COLUMNS = {"limit_minutes": "minutes", "limit_concurrency": "concurrent_calls",
                 "limit_agents": "agents", "limit_members": "members"}
ACCESS_COLUMNS = {f"access.{c.key}": c.key for c in CATEGORIES}
COLUMNS = ("external_id", "id", "name", "parent", "owner_email", "owner_role", "plan", *LIMIT_COLUMNS,
           *ACCESS_COLUMNS, "agency")
OWNER_ROLES = (RoleId.OWNER, RoleId.ADMIN, RoleId.MEMBER, RoleId.VIEWER)
EXTERNAL_ID_MAX_LENGTH = Account._meta.get_field("external_id").max_length
MAX_LIMIT = 2**31 - 1
BATCH = 500
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Problem:
    line: int  # 1 is the header of a CSV file; JSON files count items from 1
    column: str
    message: str
    external_id: str = ""

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "external_id": self.external_id, "message": self.message}


@dataclass
class Outcome:
    line: int
    external_id: str
    name: str
    action: str  # create, update, unchanged, differs (a change left alone: --no-update)
    changes: list[str] = field(default_factory=list)
    account_id: str = ""  # the account's public id (after a run that wrote, also for created ones)
    parent: str = ""

    def as_dict(self) -> dict:
        return {"line": self.line, "external_id": self.external_id, "name": self.name, "action": self.action,
                "changes": self.changes, "id": self.account_id, "parent": self.parent}


@dataclass
class Report:
    unit: str  # "Line" or "Item"
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    applied: bool = False
    invitations: int = 0
    memberships: int = 0
    agency_requests: int = 0

    @property
    def counts(self) -> Counter:
        return Counter(o.action for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self, problem: Problem) -> str:
        where = f"{self.unit} {problem.line}" + (f", column {problem.column}" if problem.column else "")
        return f"{where}: {problem.message}"

    def summary(self) -> str:
        c = self.counts
        if self.problems:
            return (f"{len(self.problems)} problem(s) in {len({p.line for p in self.problems})} row(s): nothing "
                    "was written.")
        done = self.applied and not self.dry_run
        parts = [f"{c['create']} {'created' if done else 'to create'}",
                 f"{c['update']} {'updated' if done else 'to update'}", f"{c['unchanged']} unchanged"]
        if c["differs"]:
            parts.append(f"{c['differs']} with changes left alone (--no-update)")
        text = f"{len(self.outcomes)} row(s): " + ", ".join(parts) + "."
        if done and (self.invitations or self.memberships or self.agency_requests):
            text += (f" {self.invitations} invitation(s) sent, {self.memberships} existing user(s) added, "
                     f"{self.agency_requests} agency access request(s).")
        return text + (" Dry run: nothing was written." if self.dry_run else "")

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "applied": self.applied, "rows": len(self.outcomes),
                **{k: self.counts[k] for k in ("create", "update", "unchanged", "differs")},
                "invitations": self.invitations, "memberships": self.memberships,
                "agency_requests": self.agency_requests,
                "problems": [p.as_dict() for p in self.problems],
                "accounts": [o.as_dict() for o in self.outcomes]}


class ProvisioningConflict(Exception):
    """The tree changed under a run (another run or a page created the same account at the same moment)."""


# --------------------------------------------------------------------------------------------------
# Reading the file


def detect_format(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".csv"):
        return "csv"
    raise ValueError(f"Cannot tell the format of {filename!r}: name it .csv or .json (or pass --input-format).")


def read_rows(text: str, fmt: str) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """(line, {column: stripped value}) for every non-empty row, and the problems of the file's shape."""
    return _read_json(text) if fmt == "json" else _read_csv(text)


def _check_columns(columns: Iterable[str], line: int) -> list[Problem]:
    problems = [Problem(line, col, f"unknown column. Columns: {', '.join(COLUMNS)}.")
                for col in columns if col not in COLUMNS]
    return problems


def _read_csv(text: str) -> tuple[list, list[Problem]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        return [], [Problem(1, "", f"not a readable CSV file ({exc}).")]
    if not header:
        return [], [Problem(1, "", "the file is empty: the first line names the columns.")]
    problems = _check_columns(header, 1)
    duplicates = [h for h, n in Counter(header).items() if n > 1]
    problems += [Problem(1, h, "column given twice.") for h in duplicates]
    problems += _missing_columns(set(header), 1)
    reader.fieldnames = header
    rows = []
    try:
        for raw in reader:
            line = reader.line_num
            extra = raw.pop(None, None)
            if extra and any(v.strip() for v in extra):
                problems.append(Problem(line, "", f"{len(extra)} more value(s) than the header has columns."))
            values = {k: _unquote((v or "").strip()) for k, v in raw.items() if k in COLUMNS}
            if any(values.values()):
                rows.append((line, values))
    except csv.Error as exc:
        problems.append(Problem(reader.line_num, "", f"not readable as CSV ({exc})."))
    return rows, problems


QUOTE = "'"


def _quote(value: str) -> str:
    """A cell as exported: neutralised for spreadsheets ("=Acme" → "'=Acme"); a value that already starts with a
    quote gets one more, so that ``_unquote`` gives back exactly what was exported."""
    return QUOTE + value if isinstance(value, str) and value.startswith((QUOTE, *FORMULA_PREFIXES)) else value


def _unquote(value: str) -> str:
    """The inverse of ``_quote``: "'=Acme" → "=Acme", "''+1 Team" → "'+1 Team"; anything else as it is."""
    return value[1:] if value[:1] == QUOTE and value[1:2] in (QUOTE, *FORMULA_PREFIXES) and value[1:2] else value


def _missing_columns(columns: set[str], line: int) -> list[Problem]:
    problems = []
    if "name" not in columns:
        problems.append(Problem(line, "name", "missing column: every row needs a name."))
    if "external_id" not in columns and "id" not in columns:
        problems.append(Problem(line, "external_id", "missing column: every row needs an external_id (or the id "
                                                     "of an existing account)."))
    return problems


def _read_json(text: str) -> tuple[list, list[Problem]]:
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        return [], [Problem(exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno}).")]
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, nesting past Python's stack
        return [], [Problem(1, "", f"not readable as JSON ({type(exc).__name__}: the file is malformed).")]
    if isinstance(data, dict) and isinstance(data.get("accounts"), list):
        data = data["accounts"]
    if not isinstance(data, list):
        return [], [Problem(1, "", 'expected a list of accounts, or {"accounts": [...]}.')]
    rows, problems, seen = [], [], set()
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            problems.append(Problem(number, "", "each account is an object of columns and values."))
            continue
        values: dict[str, str] = {}
        for key, value in item.items():
            if key == "access" and isinstance(value, dict):  # {"access": {"agents": "read"}} as well
                pairs = [(f"access.{k}", v) for k, v in value.items()]
            else:
                pairs = [(key, value)]
            for column, v in pairs:
                if column not in COLUMNS:
                    problems += [p for p in _check_columns([column], number) if (column, 0) not in seen]
                    seen.add((column, 0))
                    continue
                if isinstance(v, bool) or isinstance(v, list | dict):
                    problems.append(Problem(number, column, "expected a text or a number."))
                    continue
                values[column] = "" if v is None else str(v).strip()
        if any(values.values()):
            rows.append((number, values))
    return rows, problems


# --------------------------------------------------------------------------------------------------
# One row, checked on its own


@dataclass(eq=False)
class _Row:
    line: int
    external_id: str = ""
    public_id: uuid.UUID | None = None
    name: str = ""
    parent_ref: str = ""
    owner_email: str = ""
    owner_role: str = RoleId.OWNER
    plan: Plan | None = None
    limits: dict[str, int] = field(default_factory=dict)  # given limits only
    access: Matrix = field(default_factory=dict)  # given categories only
    agency_ref: str = ""
    bad: bool = False
    # resolved
    parent_row: _Row | None = None
    parent_account: Account | None = None
    account: Account | None = None  # the existing account this row describes
    depth: int = 0
    # planned (for rows that create or describe a node others hang under)
    node: _Node | None = None
    parent_node: _Node | None = None
    outcome: Outcome | None = None
    agency_target: object = None  # an existing Account or another _Row
    categories: Matrix = field(default_factory=dict)
    final_limits: dict[str, int | None] = field(default_factory=dict)
    merged_access: Matrix = field(default_factory=dict)


@dataclass(eq=False)
class _Node:
    """What a child needs to know of its parent, existing or planned: enough to check and build it."""

    depth: int
    name: str
    composed: Matrix
    ceiling: dict[str, int | None]
    default_categories: Matrix
    default_limits: dict[str, int | None]
    plan: Plan | None
    suspended: bool
    account: Account | None = None  # existing
    row: _Row | None = None  # planned in this file
    path: str = ""
    child_keys: dict[str, int] = field(default_factory=dict)  # name key -> line (0: an existing account)
    tree: str = ""  # the root's path step of the existing tree this node is (or will be) in; "": a new tree
    new_children: list[_Row] = field(default_factory=list)
    last_child_step: int = 0


class _Checker:
    def __init__(self, report: Report, plans: dict[str, Plan]):
        self.report, self.plans = report, plans

    def problem(self, row: _Row, column: str, message: str) -> None:
        row.bad = True
        self.report.problems.append(Problem(row.line, column, message, row.external_id))

    def parse(self, line: int, values: dict[str, str]) -> _Row:
        row = _Row(line=line)
        ext = values.get("external_id", "")
        if len(ext) > EXTERNAL_ID_MAX_LENGTH:
            self.problem(row, "external_id", f"at most {EXTERNAL_ID_MAX_LENGTH} characters.")
        elif ext and (normalize_name(ext) != ext or " " in ext):
            self.problem(row, "external_id", "spaces, invisible or control characters are not allowed.")
        row.external_id = ext
        if values.get("id"):
            row.public_id = uuid_or_none(values["id"])
            if row.public_id is None:
                self.problem(row, "id", f"{values['id']!r} is not an account id.")
        elif not ext:
            self.problem(row, "external_id", "every row needs an external_id (or the id of an existing account).")
        row.name = normalize_name(values.get("name", ""))
        if len(row.name) < NAME_MIN_LENGTH:
            self.problem(row, "name", f"names need at least {NAME_MIN_LENGTH} characters"
                         + (f" ({values.get('name')!r})." if values.get("name") else "; this one is missing."))
        elif len(row.name) > NAME_MAX_LENGTH:
            self.problem(row, "name", f"names can be at most {NAME_MAX_LENGTH} characters.")
        row.parent_ref = values.get("parent", "")
        row.agency_ref = values.get("agency", "")
        if values.get("owner_email"):
            try:
                row.owner_email = clean_email(values["owner_email"]).lower()
            except ValidationError as exc:
                self.problem(row, "owner_email", " ".join(exc.messages))
        role = values.get("owner_role", "").lower()
        if role:
            if role not in OWNER_ROLES:
                self.problem(row, "owner_role", f"{values['owner_role']!r} is not a role to give here: use "
                                                f"{', '.join(OWNER_ROLES)}.")
            elif not values.get("owner_email"):
                self.problem(row, "owner_role", "a role needs an owner_email to give it to.")
            row.owner_role = role
        if values.get("plan"):
            row.plan = self.plans.get(values["plan"].lower())
            if row.plan is None:
                self.problem(row, "plan", f"unknown plan {values['plan']!r}: use {', '.join(self.plans)}.")
        for column, name in LIMIT_COLUMNS.items():
            raw = values.get(column, "")
            if not raw:
                continue
            if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_LIMIT:
                self.problem(row, column, f"{raw!r} is not a whole number of 0 or more.")
            else:
                row.limits[name] = int(raw)
        for column, key in ACCESS_COLUMNS.items():
            raw = values.get(column, "")
            if not raw:
                continue
            try:
                row.access.update(clean_matrix({key: raw}))
            except ValueError as exc:
                self.problem(row, column, str(exc))
        return row


# --------------------------------------------------------------------------------------------------
# The file as a whole


def _chunks(items: list, size: int = 2000):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _fetch(model_qs, field_name: str, values: Iterable) -> list:
    values = list(values)
    found = []
    for chunk in _chunks(values):
        found += list(model_qs.filter(**{f"{field_name}__in": chunk}))
    return found


def _lineage_node(account: Account, ancestors: dict[str, Account], plans_by_root: dict[str, Plan | None]) -> _Node:
    lineage = [ancestors[p] for p in account.ancestor_paths if p in ancestors] + [account]
    own = [clean_matrix(a.access_categories) for a in lineage if a.depth > 1 and a.access_categories]
    return _Node(depth=account.depth, name=account.name, composed=compose(*own), ceiling=limit_ceiling(lineage),
                 default_categories=clean_matrix(account.default_access_categories or {}),
                 default_limits=account.default_limits(), plan=plans_by_root.get(account.root_path),
                 suspended=any(a.is_suspended for a in lineage), account=account, path=account.path,
                 tree=account.root_path)


def _level_name(matrix: Matrix, key: str) -> str:
    return Level(matrix.get(key, CATEGORY_BY_KEY[key].top)).label.lower()


class Provisioner:
    def __init__(self, rows, read_problems, *, unit: str, dry_run: bool, update: bool, staff=None,
                 progress: ProgressFn | None = None):
        self.report = Report(unit=unit, dry_run=dry_run)
        self.report.problems += read_problems
        self.update, self.staff = update, staff
        self.progress = progress or (lambda phase, done, total: None)
        self.plans = {p.code.lower(): p for p in Plan.objects.all()}
        self.default_plan = next((p for p in self.plans.values() if p.is_default), None)
        checker = self.checker = _Checker(self.report, self.plans)
        self.rows = [checker.parse(line, values) for line, values in rows]

    def problem(self, row, column, message):
        self.checker.problem(row, column, message)

    # -- resolving references
    def resolve(self) -> None:
        rows = self.rows
        by_ext: dict[str, _Row] = {}
        by_id: dict[uuid.UUID, _Row] = {}
        for row in rows:
            if row.external_id:
                first = by_ext.get(row.external_id)
                if first is not None:
                    self.problem(row, "external_id", f"{row.external_id!r} is also on {self.report.unit.lower()} "
                                                     f"{first.line}: each row needs its own.")
                else:
                    by_ext[row.external_id] = row
            if row.public_id:
                first = by_id.get(row.public_id)
                if first is not None:
                    self.problem(row, "id", f"also on {self.report.unit.lower()} {first.line}.")
                else:
                    by_id[row.public_id] = row
        self.file_ext = by_ext
        refs = {r.parent_ref for r in rows if r.parent_ref} | {r.agency_ref for r in rows if r.agency_ref}
        uuids = {u for u in map(uuid_or_none, refs) if u} | set(by_id)
        exts = set(by_ext) | {r for r in refs if r not in by_ext}
        self.existing_by_id = {a.public_id: a for a in _fetch(Account.objects.all(), "public_id", uuids)}
        self.existing_by_ext: dict[str, list[Account]] = defaultdict(list)
        for account in _fetch(Account.objects.exclude(external_id=""), "external_id", exts):
            self.existing_by_ext[account.external_id].append(account)
        for row in rows:
            if row.parent_ref:
                self._resolve_parent(row)
        self._order()

    def _existing_ref(self, ref: str) -> tuple[Account | None, str]:
        """The existing account a reference names, or None and why."""
        as_id = uuid_or_none(ref)
        if as_id and as_id in self.existing_by_id:
            return self.existing_by_id[as_id], ""
        found = self.existing_by_ext.get(ref, [])
        if len(found) == 1:
            return found[0], ""
        if len(found) > 1:
            return None, (f"{len(found)} accounts in different trees have the external ID {ref!r}: use the "
                          "account id instead.")
        return None, (f"{ref!r} is not an external_id in this file, nor an account id or external ID of an "
                      "existing account.")

    def _resolve_parent(self, row: _Row) -> None:
        parent_row = self.file_ext.get(row.parent_ref)
        if parent_row is None and uuid_or_none(row.parent_ref):
            parent_row = next((r for r in self.rows if r.public_id == uuid_or_none(row.parent_ref)), None)
        if parent_row is row:
            self.problem(row, "parent", "a row cannot be its own parent.")
        elif parent_row is not None:
            row.parent_row = parent_row
        else:
            account, why = self._existing_ref(row.parent_ref)
            if account is None:
                self.problem(row, "parent", f"unknown parent: {why}")
            else:
                row.parent_account = account

    def _order(self) -> None:
        """Depth of every row (parents first). Each row has at most one parent row, so following parents from
        any row ends at a row already placed, a row under an existing account or at the top, or a cycle."""
        depth: dict[int, int] = {}
        unit = self.report.unit.lower()
        for start in self.rows:
            chain, on_chain, row = [], set(), start
            while row is not None and id(row) not in depth and id(row) not in on_chain:
                chain.append(row)
                on_chain.add(id(row))
                row = row.parent_row
            base = depth.get(id(row)) if row is not None else None
            if row is not None and id(row) in on_chain:  # back to a row of this chain: a cycle
                at = chain.index(row)
                cycle, chain = chain[at:], chain[:at]
                lines = " → ".join(str(r.line) for r in [*reversed(cycle), cycle[-1]])
                for r in cycle:
                    self.problem(r, "parent", f"the parents form a cycle ({unit}s {lines}).")
                    depth[id(r)] = r.depth = -1
                base = -1
            for r in reversed(chain):
                if base is None:  # the top of the chain: under an existing account, at the top, or unknown
                    d = r.parent_account.depth + 1 if r.parent_account else (-1 if r.parent_ref else 1)
                else:
                    d = -1 if base == -1 else base + 1
                depth[id(r)] = r.depth = base = d
        self.ordered = sorted((r for r in self.rows if r.depth > 0), key=lambda r: r.depth) + [
            r for r in self.rows if r.depth <= 0]

    # -- the plan
    def plan(self) -> None:
        rows = [r for r in self.ordered if r.depth > 0]
        self._load_context(rows)
        for i, row in enumerate(self.ordered, start=1):
            if row.depth > 0:
                self._plan_row(row)
            elif row.outcome is None:
                row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            if i % BATCH == 0:
                self.progress("Checking", i, len(self.ordered))
        for row in self.ordered:  # after every row is planned: the agency may be any row of the file
            if row.agency_ref and row.outcome and row.outcome.action != "error":
                self._plan_agency(row)
        self.progress("Checking", len(self.ordered), len(self.ordered))
        self.report.outcomes = sorted((r.outcome for r in self.rows if r.outcome), key=lambda o: o.line)
        self.report.outcomes = [o for o in self.report.outcomes if o.action != "error"]

    def _load_context(self, rows: list[_Row]) -> None:
        """Everything the checks read, in a fixed number of queries: the existing parents with their ancestors,
        children and plans; the accounts rows may describe; their owners, invitations and agency grants."""
        parents = {r.parent_account.pk: r.parent_account for r in rows if r.parent_account is not None}
        candidates = [a for accounts in self.existing_by_ext.values() for a in accounts]
        candidates += [self.existing_by_id[r.public_id] for r in rows if r.public_id in self.existing_by_id]
        self.candidates = {a.pk: a for a in candidates}
        if not self.report.dry_run and parents:
            # Creating under an existing account locks it, as subaccount_create does: runs and pages take turns.
            list(Account.objects.select_for_update().filter(pk__in=list(parents)).values_list("pk"))
        known = {**parents, **self.candidates}
        ancestor_paths = {p for a in known.values() for p in a.ancestor_paths}
        ancestors = {a.path: a for a in _fetch(Account.objects.all(), "path", ancestor_paths)}
        roots = {a.root_path for a in known.values()}
        self.plans_by_root = {s.account.path: s.plan for s in _fetch(
            Subscription.objects.select_related("plan", "account"), "account__path",
            roots)}
        self.nodes: dict[int, _Node] = {pk: _lineage_node(a, ancestors, self.plans_by_root) for pk, a in known.items()}
        for a in known.values():  # every lineage a matched account sits in, for checks on update
            if a.parent_id and a.parent_id not in self.nodes:
                parent = ancestors.get(a.path[:-Account.steplen])
                if parent is not None:
                    self.nodes[parent.pk] = _lineage_node(parent, ancestors, self.plans_by_root)
        children = _fetch(Account.objects.values_list("parent_id", "name_key", "path", "pk"), "parent_id",
                          list(self.nodes))
        for parent_id, key, path, pk in children:
            node = self.nodes[parent_id]
            node.child_keys.setdefault(key, -pk)
            node.last_child_step = max(node.last_child_step, Account._str2int(path[-Account.steplen:]))
        self.last_root_step = 0
        last_root = Account.objects.filter(depth=1).order_by("-path").values_list("path", flat=True).first()
        if last_root:
            self.last_root_step = Account._str2int(last_root)
        # Owners and pending invitations of accounts rows may describe, users rows name, open agency grants.
        from agency.models import AgencyGrant
        from members.models import Invitation, Membership, User

        emails = {r.owner_email for r in rows if r.owner_email}
        ids = list(self.candidates)
        self.member_roles = {(a, e): role for a, e, role in (
            Membership.objects.filter(account_id__in=ids, is_agency=False).annotate(e=Lower("user__email"))
            .filter(e__in=emails).values_list("account_id", "e", "role"))} if emails and ids else {}
        self.members = set(self.member_roles)
        # Seats taken (members and pending invitations) of accounts that may get an owner: the member limit.
        self.seats = Counter()
        if emails and ids:
            for account_id, n in (Membership.objects.filter(account_id__in=ids).values("account_id")
                                  .annotate(n=Count("pk")).values_list("account_id", "n")):
                self.seats[account_id] += n
            for account_id, n in (Invitation.objects.filter(account_id__in=ids, status=Invitation.Status.PENDING)
                                  .values("account_id").annotate(n=Count("pk")).values_list("account_id", "n")):
                self.seats[account_id] += n
        self.pending = set(Invitation.objects.filter(account_id__in=ids, status=Invitation.Status.PENDING)
                           .annotate(e=Lower("email")).filter(e__in=emails).values_list("account_id", "e")
                           ) if emails and ids else set()
        self.users = {u.email.lower(): u for u in _fetch(User.objects.annotate(e=Lower("email")), "e", emails)}
        self.grants = set(AgencyGrant.objects.filter(client_id__in=ids, status__in=["requested", "active"])
                          .values_list("client_id", "agency_id")) if ids else set()

    def _match(self, row: _Row, parent: _Node | None) -> Account | None:
        """The existing account this row describes: by id, else by external_id within the row's tree."""
        if row.public_id:
            account = self.existing_by_id.get(row.public_id)
            if account is None:
                self.problem(row, "id", "no account has this id (leave id empty to create one).")
            return account
        if not row.external_id:
            return None
        found = self.existing_by_ext.get(row.external_id, [])
        if parent is None:
            found = [a for a in found if a.depth == 1]
            if len(found) > 1:
                self.problem(row, "external_id", f"{len(found)} top-level accounts have this external ID: add "
                                                 "an id column to say which.")
                return None
            if found and name_key(found[0].name) != name_key(row.name):
                # External IDs are unique per tree, not per platform: another customer's top-level account may have
                # the same one. Renaming it from a file needs its id, so a file never takes over another tree.
                self.problem(row, "external_id", f"a top-level account with this external ID is named "
                                                 f"“{found[0].name}”: add an id column to rename it, or use another "
                                                 "external_id for a new account.")
                return None
            return found[0] if found else None
        if parent.account is None:  # a new parent: nothing below it exists yet, but its tree may
            taken = next((a for a in found if parent.tree and a.root_path == parent.tree), None)
            if taken is not None:
                self.problem(row, "external_id", f"{taken.name} in the same tree already has this external ID.")
            return None
        tree = parent.account.root_path
        return next((a for a in found if a.path.startswith(tree)), None)

    def _parent_node(self, row: _Row) -> _Node | None:
        if row.parent_row is not None:
            return row.parent_row.node
        if row.parent_account is not None:
            return self.nodes[row.parent_account.pk]
        return None

    def _plan_row(self, row: _Row) -> None:
        parent = self._parent_node(row)
        if row.parent_ref and parent is None:  # the parent row has problems of its own
            self.problem(row, "parent", f"the parent ({row.parent_ref}) has problems: see "
                                        f"{self.report.unit.lower()} {row.parent_row.line}.")
            row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            return
        account = self._match(row, parent)
        if account is not None:
            self._plan_existing(row, account, parent)
        else:
            self._plan_new(row, parent)

    def _check_common(self, row: _Row, parent: _Node | None, *, exclude_pk=None, account: Account | None = None
                      ) -> None:
        """The rules a row meets under its parent. For an existing ``account``, only what the row changes: a value
        it already has stays (a rerun never fails on a state an earlier rule or staff left)."""
        current = clean_matrix(account.access_categories or {}) if account is not None and account.depth > 1 else {}
        if parent is None:
            if row.access:
                self.problem(row, next(c for c, k in ACCESS_COLUMNS.items() if k in row.access),
                             "access categories are set on subaccounts only (a top-level account's come from its "
                             "people's roles).")
            for column, name in LIMIT_COLUMNS.items():
                if name in row.limits:
                    self.problem(row, column, "limits are set on subaccounts only (a top-level account's come "
                                              "from its plan).")
            return
        if row.plan is not None:
            self.problem(row, "plan", f"a subaccount is billed through its parent and has no plan of its own "
                                      f"({parent.name}'s top account's plan applies).")
        if row.agency_ref:
            self.problem(row, "agency", "agency access joins top-level accounts only: a subaccount is managed by "
                                        "its parent.")
        for key, level in row.access.items():
            held = parent.composed.get(key, CATEGORY_BY_KEY[key].top)
            if level > held and (account is None or current.get(key, CATEGORY_BY_KEY[key].top) != level):
                self.problem(row, f"access.{key}", f"{level.label.lower()} is above what {parent.name} holds "
                                                   f"({Level(held).label.lower()}).")
        for column, name in LIMIT_COLUMNS.items():
            cap = parent.ceiling[name]
            unchanged = account is not None and getattr(account, f"limit_{name}") == row.limits.get(name)
            if name in row.limits and cap is not None and row.limits[name] > cap and not unchanged:
                self.problem(row, column, f"{row.limits[name]} is above the {cap} that {parent.name} allows.")
        taken = parent.child_keys.get(name_key(row.name))
        if taken is not None and taken != exclude_pk and taken != row.line:
            where = (f"another row ({self.report.unit.lower()} {taken})" if taken > 0
                     else f"{parent.name} already has a subaccount")
            self.problem(row, "name", f"{where} named “{row.name}” (names are unique among siblings).")
        elif not row.bad:
            parent.child_keys[name_key(row.name)] = row.line

    def _agency(self, row: _Row) -> Account | _Row | None:
        if not row.agency_ref:
            return None
        target = self.file_ext.get(row.agency_ref)
        if target is None:
            target, why = self._existing_ref(row.agency_ref)
            if target is None:
                self.problem(row, "agency", f"unknown agency: {why}")
                return None
        if getattr(target, "bad", False):
            self.problem(row, "agency", f"the agency's row ({self.report.unit.lower()} {target.line}) has problems.")
            return None
        if target.depth != 1:
            self.problem(row, "agency", "the agency must be a top-level account.")
            return None
        if target is row or (isinstance(target, Account) and row.account is not None and target.pk == row.account.pk):
            self.problem(row, "agency", "an account cannot be its own agency.")
            return None
        return target

    def _plan_agency(self, row: _Row) -> None:
        agency = self._agency(row)
        if agency is None:
            row.outcome.action = "error"
            return
        row.agency_target = agency
        existing = agency.account if isinstance(agency, _Row) else agency
        if existing is not None and row.account is not None and (row.account.pk, existing.pk) in self.grants:
            return
        row.outcome.changes.append(f"agency access requested for {agency.name}")
        if row.outcome.action == "unchanged":
            row.outcome.action = "update" if self.update else "differs"

    def _plan_new(self, row: _Row, parent: _Node | None) -> None:
        self._check_common(row, parent)
        if parent is not None:
            if parent.depth >= settings.ACCOUNT_MAX_DEPTH:
                self.problem(row, "parent", f"subaccounts can be nested at most {settings.ACCOUNT_MAX_DEPTH} levels "
                                            f"deep; {parent.name} is already at level {parent.depth}.")
            if parent.suspended:
                self.problem(row, "parent", f"{parent.name} (or an account above it) is suspended.")
            if parent.plan is None or not parent.plan.allows_subaccounts:
                self.problem(row, "parent", f"the {parent.plan.name if parent.plan else 'current'} plan of "
                                            f"{parent.name}'s top account does not include subaccounts.")
        if row.bad:
            row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            return
        if parent is None:
            node = _Node(depth=1, name=row.name, composed={}, ceiling=dict.fromkeys(LIMIT_NAMES),
                         default_categories={}, default_limits=dict.fromkeys(LIMIT_NAMES),
                         plan=row.plan or self.default_plan, suspended=False, row=row)
            row.categories, row.final_limits = {}, dict.fromkeys(LIMIT_NAMES)
        else:
            own = compose(parent.default_categories, parent.composed)
            own.update(row.access)
            limits = {}
            for name in LIMIT_NAMES:
                value = row.limits.get(name, parent.default_limits[name])
                cap = parent.ceiling[name]
                limits[name] = cap if cap is not None and (value is None or value > cap) else value
            if limits["members"] == 0 and row.owner_email:
                self.problem(row, "limit_members", "0 members leaves no room for the owner_email.")
                row.outcome = Outcome(row.line, row.external_id, row.name, "error")
                return
            lineage_ceiling = {n: min((v for v in (parent.ceiling[n], limits[n]) if v is not None), default=None)
                               for n in LIMIT_NAMES}
            node = _Node(depth=parent.depth + 1, name=row.name, composed=compose(parent.composed, own),
                         ceiling=lineage_ceiling, default_categories={}, default_limits=dict.fromkeys(LIMIT_NAMES),
                         plan=parent.plan, suspended=False, row=row, tree=parent.tree)
            row.categories, row.final_limits = own, limits
            parent.new_children.append(row)
        row.node = node
        row.parent_node = parent
        changes = []
        if row.owner_email:
            changes.append(f"owner {row.owner_email} ({get_role(row.owner_role).name})")
        row.outcome = Outcome(row.line, row.external_id, row.name, "create", changes,
                              parent=parent.name if parent else "")

    def _plan_existing(self, row: _Row, account: Account, parent: _Node | None) -> None:
        row.account = account
        current_parent_id = account.parent_id
        wanted_parent = parent.account.pk if parent is not None and parent.account is not None else None
        if (parent is not None and parent.account is None) or current_parent_id != wanted_parent:
            where = f"under {self.nodes[current_parent_id].name}" if current_parent_id in self.nodes else (
                "at the top level" if current_parent_id is None else "elsewhere")
            self.problem(row, "parent", f"{account.name} already exists {where}; provisioning does not move "
                                        "accounts (a billing transfer or the Move page does).")
            row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            return
        node = self.nodes.get(account.pk)
        self._check_common(row, parent, exclude_pk=-account.pk, account=account)
        if row.external_id and account.external_id != row.external_id:
            others = [a for a in self.existing_by_ext.get(row.external_id, [])
                      if a.pk != account.pk and a.root_path == account.root_path]
            if others:
                self.problem(row, "external_id", f"{others[0].name} in the same tree already has this external ID.")
        if row.bad:
            row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            return
        changes = []
        if row.name != account.name:
            changes.append(f"name “{account.name}” → “{row.name}”")
        if row.external_id and row.external_id != account.external_id:
            changes.append(f"external_id {account.external_id or '(none)'} → {row.external_id}")
        for column, name in LIMIT_COLUMNS.items():
            if name in row.limits and row.limits[name] != getattr(account, f"limit_{name}"):
                changes.append(f"{column} {getattr(account, f'limit_{name}')} → {row.limits[name]}")
        current = clean_matrix(account.access_categories or {}) if account.depth > 1 else {}
        merged = {**current, **row.access}
        for key, level in row.access.items():
            if current.get(key) != level:
                changes.append(f"access.{key} {_level_name(current, key)} → {level.label.lower()}")
        plan = self.plans_by_root.get(account.path) if account.depth == 1 else None
        if row.plan is not None and account.depth == 1 and (plan is None or plan.pk != row.plan.pk):
            from billing.plans import plan_change_refusal

            refusal = plan_change_refusal(account, row.plan, plan)  # the same rule as Billing → Plans
            if refusal:
                self.problem(row, "plan", refusal)
            upgrade = plan is None or row.plan.monthly_price_cents > plan.monthly_price_cents
            changes.append(f"plan {plan.name if plan else '(none)'} → {row.plan.name}"
                           + ("" if upgrade else " (from the next period)"))
        role_now = self.member_roles.get((account.pk, row.owner_email))
        if row.owner_email and role_now is not None and role_now != row.owner_role:
            changes.append(f"{row.owner_email}'s role {get_role(role_now).name} → {get_role(row.owner_role).name}")
        elif row.owner_email and (account.pk, row.owner_email) not in self.members | self.pending:
            limit = account.limit_members
            if limit is not None and self.seats[account.pk] + 1 > limit:
                self.problem(row, "owner_email", f"{account.name} has reached its limit of {limit} members "
                                                 f"({self.seats[account.pk]} with pending invitations).")
            changes.append(f"owner {row.owner_email} ({get_role(row.owner_role).name}) "
                           + ("added" if row.owner_email in self.users else "invited"))
        if row.bad:
            row.outcome = Outcome(row.line, row.external_id, row.name, "error")
            return
        if node is None:
            node = self.nodes[account.pk] = _lineage_node(account, {}, self.plans_by_root)
        if changes and self.update:  # children below see the values this run sets
            own = merged if account.depth > 1 else {}
            node.composed = compose(parent.composed, own) if parent is not None else {}
            for name, value in row.limits.items():
                if parent is not None:
                    caps = [v for v in (parent.ceiling[name], value) if v is not None]
                    node.ceiling[name] = min(caps) if caps else None
            if row.plan is not None and account.depth == 1:
                node.plan = row.plan
        row.node, row.merged_access = node, merged
        row.parent_node = parent
        action = "unchanged" if not changes else ("update" if self.update else "differs")
        row.outcome = Outcome(row.line, row.external_id, row.name, action, changes, str(account.public_id),
                              parent=parent.name if parent else "")

    # -- writing
    def apply(self) -> None:
        creates = [r for r in self.ordered if r.outcome and r.outcome.action == "create"]
        updates = [r for r in self.ordered if r.outcome and r.outcome.action == "update"]
        total, done = len(creates) + len(updates), 0
        audit_rows: list[AuditEvent] = []
        actor, mark = self._staff()
        who = {"actor": actor, "actor_email": getattr(actor, "email", "") or ""}
        for depth in sorted({r.depth for r in creates}):
            level = [r for r in creates if r.depth == depth]
            accounts = [self._build(r) for r in level]
            for chunk in _chunks(list(zip(level, accounts, strict=True)), BATCH):
                Account.objects.bulk_create([a for _, a in chunk])
                for row, created in chunk:
                    row.node.account, row.node.path = created, created.path
                    row.outcome.account_id = str(created.public_id)
                    audit_rows.append(AuditEvent(
                        account=created, action="subaccount.created" if depth > 1 else "account.created",
                        summary=f"{'Subaccount' if depth > 1 else 'Account'} “{created.name}” created by "
                                "provisioning", data={"external_id": created.external_id, "line": row.line, **mark},
                        **who))
                done += len(chunk)
                self.progress("Writing", done, total)
        for node in {id(r.parent_node): r.parent_node for r in creates if r.parent_node is not None}.values():
            if node.row is None or node.row.outcome.action != "create":  # an existing parent gained children
                n = len(node.new_children)
                Account.objects.filter(pk=node.account.pk).update(numchild=F("numchild") + n)
                audit_rows.append(AuditEvent(account=node.account, action="subaccount.created",
                                             summary=f"{n} subaccount(s) created under {node.name} by provisioning",
                                             data={"count": n, **mark}, **who))
        roots = [r for r in creates if r.depth == 1]
        Subscription.objects.bulk_create([Subscription(account=r.node.account, plan=r.node.plan) for r in roots],
                                         batch_size=BATCH)
        AuditEvent.objects.bulk_create(audit_rows, batch_size=BATCH)
        self._owners(creates)
        for row in updates:
            self._apply_update(row)
            done += 1
            if done % 50 == 0:
                self.progress("Writing", done, total)
        self._agency_requests([r for r in creates + updates if r.agency_target is not None])
        self.progress("Writing", total, total)
        self.report.applied = True

    def _staff(self):
        """The staff member who runs this from the admin (None: a command, the platform) and the audit data that
        marks their rows (``accounts.audit.staff_acting``)."""
        staff = self.staff if getattr(self.staff, "pk", None) else None
        return staff, ({"staff": True} if staff is not None else {})

    def _build(self, row: _Row) -> Account:
        node, parent = row.node, row.parent_node
        if parent is None:
            self.last_root_step += 1
            path = Account._get_path(None, 1, self.last_root_step)
        else:
            parent.last_child_step += 1
            path = Account._get_path(parent.path, row.depth, parent.last_child_step)
        if len(path) != row.depth * Account.steplen:
            raise ProvisioningConflict(f"{parent.name if parent else 'The platform'} has no room for more accounts.")
        node.path = path
        return Account(path=path, depth=row.depth, numchild=len(node.new_children), name=row.name,
                       name_key=name_key(row.name), parent=parent.account if parent else None,
                       external_id=row.external_id, created_by=None, access_categories=stored(row.categories),
                       **{f"limit_{n}": v for n, v in row.final_limits.items()})

    def _owners(self, creates: list[_Row]) -> None:
        from members.invitations import _send
        from members.models import Invitation
        from members.services import membership_add

        invited, audit_rows = [], []
        staff, mark = self._staff()
        for row in creates:
            if not row.owner_email:
                continue
            account = row.node.account
            user = self.users.get(row.owner_email)
            if user is not None:
                membership_add(account=account, user=user, role=row.owner_role, by=None, staff=staff)
                self._notify(user, account, row.owner_role)
                self.report.memberships += 1
            else:
                invited.append(Invitation(account=account, email=row.owner_email, role=row.owner_role,
                                          invited_by=None, sent_by_platform=True))
                audit_rows.append(AuditEvent(account=account, action="invitation.sent",
                                             summary=f"Invited {row.owner_email} as {get_role(row.owner_role).name}",
                                             data={"email": row.owner_email, "role": row.owner_role, **mark},
                                             actor=staff, actor_email=getattr(staff, "email", "") or ""))
        Invitation.objects.bulk_create(invited, batch_size=BATCH)
        AuditEvent.objects.bulk_create(audit_rows, batch_size=BATCH)
        for invitation in invited:
            _send(invitation)
        self.report.invitations += len(invited)

    def _notify(self, user, account: Account, role: str) -> None:
        from django.core.mail import send_mail

        subject = f"You now have access to {account.name} on Agency Console"
        body = (f"Hello {user.display_name},\n\nThe platform added you to {account.name} as "
                f"{get_role(role).name}. Sign in to open it: it is in your account switcher.\n")
        transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]))

    def _apply_update(self, row: _Row) -> None:
        from members.grants import check_grant
        from members.services import membership_add

        from .audit import audit
        from .services import account_rename, subaccount_set_access

        account = Account.objects.select_for_update().get(pk=row.account.pk)
        by, mark = self._staff()
        if row.name != account.name:
            account_rename(account=account, name=row.name, by=None, staff=by)
        if row.external_id and row.external_id != account.external_id:
            Account.objects.filter(pk=account.pk).update(external_id=row.external_id)
            audit(account=account, actor=by, action="account.external_id_changed",
                  summary=f"External ID set to {row.external_id} by provisioning", old=account.external_id,
                  new=row.external_id, **mark)
        if row.access and row.merged_access != clean_matrix(account.access_categories or {}):
            subaccount_set_access(account=account, matrix=stored(row.merged_access), by=None, staff=by)
        changed = {n: v for n, v in row.limits.items() if getattr(account, f"limit_{n}") != v}
        if changed:
            check_grant(None, account.parent, limits=changed)
            old = account.limits()
            Account.objects.filter(pk=account.pk).update(**{f"limit_{n}": v for n, v in changed.items()})
            for target in (account, account.parent):
                audit(account=target, actor=by, action="subaccount.limits_changed",
                      summary=f"Limits of {account.name} changed by provisioning", old=old,
                      new={**old, **changed}, subaccount=str(account.public_id), **mark)
        if account.depth == 1 and row.plan is not None:
            current = self.plans_by_root.get(account.path)
            if current is None or current.pk != row.plan.pk:
                from billing.plans import plan_change

                plan_change(account=account, plan=row.plan, by=None, staff=by)  # upgrades now, downgrades later
        role_now = self.member_roles.get((account.pk, row.owner_email))
        if row.owner_email and role_now is not None and role_now != row.owner_role:
            from members.models import Membership
            from members.services import membership_change_role

            membership = Membership.objects.get(account=account, user__email__iexact=row.owner_email, is_agency=False)
            membership_change_role(membership=membership, role=row.owner_role, by=None, staff=by)
        elif row.owner_email and (account.pk, row.owner_email) not in self.members | self.pending:
            user = self.users.get(row.owner_email)
            if user is not None:
                membership_add(account=account, user=user, role=row.owner_role, by=None, staff=by)
                self._notify(user, account, row.owner_role)
                self.report.memberships += 1
            else:
                from members.invitations import invitation_create

                invitation_create(account=account, email=row.owner_email, role=row.owner_role, by=None)
                self.report.invitations += 1

    def _agency_requests(self, rows: list[_Row]) -> None:
        from agency.services import access_request

        for row in rows:
            client = row.node.account
            agency = row.agency_target
            agency = agency.node.account if isinstance(agency, _Row) else agency
            if (client.pk, agency.pk) in self.grants:
                continue
            access_request(agency=agency, client=client, by=None, note="Requested by provisioning")
            self.report.agency_requests += 1


def provision(text: str, *, fmt: str, dry_run: bool = False, update: bool = True, staff=None,
              progress: ProgressFn | None = None) -> Report:
    """Check every row of ``text`` (CSV or JSON) and, unless ``dry_run`` or a row has a problem, apply them all
    in one transaction. ``staff`` (a staff user, from the admin) is named in the audit rows; a command runs as
    the platform. Invitation and notice emails go out after the commit."""
    staff_acting(None, staff, "Provisioning is done by platform staff.")
    rows, problems = read_rows(text, fmt)
    unit = "Item" if fmt == "json" else "Line"
    with transaction.atomic():
        run = Provisioner(rows, problems, unit=unit, dry_run=dry_run, update=update, staff=staff, progress=progress)
        if not rows and not problems:
            run.report.problems.append(Problem(1, "", "the file has no accounts."))
        run.resolve()
        run.plan()
        report = run.report
        if report.problems or dry_run:
            report.problems.sort(key=lambda p: (p.line, p.column))
            return report
        try:
            with transaction.atomic():
                run.apply()
        except IntegrityError as exc:
            raise ProvisioningConflict("Accounts changed while the file was applied (another run or a page "
                                       "created one at the same moment); nothing was written. Run it again.") from exc
    return report


# --------------------------------------------------------------------------------------------------
# Export: the same format, so export → edit → provision round-trips


def export_rows(accounts) -> list[dict[str, str]]:
    """One row per account of ``accounts`` (parents before children), in ``provision``'s columns. Queries: the
    accounts, their owners, pending owner invitations, plans and agency grants, whatever the count."""
    from agency.models import AgencyGrant
    from members.models import Invitation, Membership

    accounts = list(accounts.order_by("path").select_related("parent"))
    by_pk = {a.pk: a for a in accounts}
    ids = list(by_pk)
    owners: dict[int, tuple[str, str]] = {}
    rank = {RoleId.OWNER: 0, RoleId.ADMIN: 1, RoleId.MEMBER: 2, RoleId.VIEWER: 3}
    for chunk in _chunks(ids):
        for account_id, email, role in (Membership.objects.filter(account_id__in=chunk, is_agency=False)
                                        .order_by("created_at", "pk")
                                        .values_list("account_id", "user__email", "role")):
            if role in rank and (account_id not in owners or rank[role] < rank[owners[account_id][1]]):
                owners[account_id] = (email, role)
        for account_id, email, role in (Invitation.objects.filter(account_id__in=chunk, is_agency=False,
                                                                  status=Invitation.Status.PENDING)
                                        .order_by("created_at", "pk").values_list("account_id", "email", "role")):
            if account_id not in owners and role in rank:
                owners[account_id] = (email, role)
    plans = dict(Subscription.objects.filter(account_id__in=[a.pk for a in accounts if a.depth == 1])
                 .values_list("account_id", "plan__code")) if accounts else {}
    agencies: dict[int, Account] = {}
    for grant in AgencyGrant.objects.filter(client_id__in=[a.pk for a in accounts if a.depth == 1],
                                            status__in=["requested", "active"]).select_related("agency"):
        agencies.setdefault(grant.client_id, grant.agency)

    def ref(account: Account) -> str:
        return account.external_id or str(account.public_id)

    rows = []
    for a in accounts:
        email, role = owners.get(a.pk, ("", ""))
        access = clean_matrix(a.access_categories or {}) if a.depth > 1 else {}
        row = {"external_id": a.external_id, "id": str(a.public_id), "name": a.name,
               "parent": ref(a.parent) if a.parent_id else "", "owner_email": email,
               "owner_role": role if email else "", "plan": plans.get(a.pk, "") if a.depth == 1 else ""}
        for column, name in LIMIT_COLUMNS.items():
            value = getattr(a, f"limit_{name}") if a.depth > 1 else None
            row[column] = "" if value is None else str(value)
        for column, key in ACCESS_COLUMNS.items():
            row[column] = Level(access[key]).name.lower() if key in access else ""
        agency = agencies.get(a.pk)
        row["agency"] = ref(agency) if agency else ""
        rows.append(row)
    return rows


def write_export(rows: list[dict[str, str]], fmt: str, out) -> None:
    if fmt == "json":
        json.dump({"accounts": [{k: v for k, v in r.items() if v != ""} for r in rows]}, out, indent=2,
                  ensure_ascii=False)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _quote(v) for k, v in r.items()} for r in rows)  # read back by _unquote

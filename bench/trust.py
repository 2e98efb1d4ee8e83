"""Trust Center at scale: the retention purge and a contact export over a table of 1,000,000 conversation rows.

One account holds ``--rows`` conversations (half started 400 days ago, half 10 days ago; transcripts kept 90 days),
spread over 1,000 contacts, plus one contact with ``--export-rows`` conversations of its own. Measured alternately
in the same run (medians), each against a hand-written statement over the same rows:

(a) purge: ``trust.purge.purge`` (batches of RETENTION_PURGE_BATCH_SIZE, progress row per batch, audit row)
    against one raw ``UPDATE`` clearing the same fields (transcript, summary) of the same expired rows;
(b) export: ``trust.exports.contact_data`` for the big contact (the sections a contact export request writes),
    and the same plus its two files (JSON and .xlsx, as ``trust.requests`` renders them), against one raw
    ``SELECT`` of the same columns of the same rows (joined to agent and contact), fetched.

Prints the medians and the ratios (ours / raw: how many times slower). Each purge runs in a transaction that is
rolled back, so every run starts from the same rows. No timed assertion: the figures are for reading.

Run: .venv/bin/python bench/trust.py [--rows 1000000] [--export-rows 10000] [--repeat 3]
     (SQLite: a throw-away file /tmp/bench-trust-<pid>.sqlite3; prefix DATABASE_URL=postgres://… for a
     throw-away PostgreSQL test database)
"""

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

TEMPLATE = 10_000  # rows written through the ORM; the rest are copies made by INSERT ... SELECT
CONTACTS = 1_000


def build(rows: int, export_rows: int):
    """The account, its rule and the rows; returns (account, big contact, expired row count)."""
    from tests.factories import AccountFactory
    from trust.models import DataType, Period, RetentionRule
    from workspace.counts import recount_agent_conversations
    from workspace.models import Agent, Contact, Conversation

    account = AccountFactory(name="Bench")
    RetentionRule.objects.create(account=account, data_type=DataType.TRANSCRIPTS, period=Period.DAYS_90)
    agent = Agent.objects.create(account=account, name="Receptionist")
    now = timezone.now()
    contacts = Contact.objects.bulk_create([Contact(account=account, name=f"Caller {i:04d}", phone=f"+1415{i:07d}",
                                                    created_at=now - datetime.timedelta(days=500))
                                            for i in range(CONTACTS)])
    big = Contact.objects.create(account=account, name="Ada Lovelace", phone="+14155550000",
                                 email="ada@example.com", created_at=now - datetime.timedelta(days=500))

    def row(i, contact):
        started = now - datetime.timedelta(days=400 if i % 2 else 10, seconds=i)
        return Conversation(account=account, agent=agent, contact=contact, started_at=started, duration_seconds=90,
                            ended_at=started + datetime.timedelta(seconds=90),
                            summary=f"Caller {i} asked about opening hours",
                            transcript=[{"role": "agent", "text": "Hello"}, {"role": "caller", "text": f"Hi {i}"}],
                            recording_url=f"https://rec.example/{i}.mp3", insights={"score": 4, "booked": i % 3 == 0},
                            caller_ip="203.0.113.7", caller_location="Berlin, DE")

    Conversation.objects.bulk_create((row(i, big) for i in range(export_rows)), batch_size=2000)
    template = min(TEMPLATE, rows)
    Conversation.objects.bulk_create((row(i, contacts[i % CONTACTS]) for i in range(template)), batch_size=2000)
    # the rest: copies of the template rows (not the big contact's), each with a new public_id
    table = Conversation._meta.db_table
    columns = [f.column for f in Conversation._meta.concrete_fields if f.column not in ("id", "public_id")]
    new_uuid = "lower(hex(randomblob(16)))" if connection.vendor == "sqlite" else "gen_random_uuid()"
    cols = ", ".join(columns)
    done = template
    with connection.cursor() as cursor:
        while done < rows:
            n = min(done, rows - done)
            cursor.execute(f"INSERT INTO {table} ({cols}, public_id) SELECT {cols}, {new_uuid} FROM {table} "
                           f"WHERE contact_id <> %s ORDER BY id LIMIT %s", [big.pk, n])
            done += n
        cursor.execute("ANALYZE")
    recount_agent_conversations()  # written around Conversation.save, which keeps the count
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    assert Conversation.objects.filter(account=account).exclude(contact=big).count() == rows
    expired = Conversation.objects.filter(account=account, started_at__lt=now - datetime.timedelta(days=90)).count()
    return account, big, expired


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="conversation rows (besides the big contact's)")
    parser.add_argument("--export-rows", type=int, default=10_000, help="conversations of the exported contact")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    setup_test_environment()
    if connection.vendor == "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"/tmp/bench-trust-{os.getpid()}.sqlite3"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from trust import exports, purge
        from trust.models import DataType
        from workspace.models import Conversation

        started = time.perf_counter()
        account, big, expired = build(args.rows, args.export_rows)
        built = time.perf_counter() - started
        table = Conversation._meta.db_table

        def ours_purge():
            with transaction.atomic():
                t = time.perf_counter()
                run = purge.purge(account=account)
                elapsed = time.perf_counter() - t
                assert run.totals == {DataType.TRANSCRIPTS: expired}, run.totals
                transaction.set_rollback(True)
            return elapsed

        def raw_purge():
            with transaction.atomic():
                cutoff = timezone.now() - datetime.timedelta(days=90)
                t = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(f"UPDATE {table} SET transcript = %s, summary = '', transcript_anonymised = %s "
                                   "WHERE account_id = %s AND started_at < %s",
                                   ["[]", False, account.pk, cutoff])
                    changed = cursor.rowcount
                elapsed = time.perf_counter() - t
                assert changed == expired, (changed, expired)
                transaction.set_rollback(True)
            return elapsed

        def ours_sections():
            t = time.perf_counter()
            sections = exports.contact_data([big])
            elapsed = time.perf_counter() - t
            assert len(sections[1].rows) == args.export_rows
            return elapsed, sections

        def ours_export():
            elapsed, sections = ours_sections()
            t = time.perf_counter()
            about = {"request_id": "bench", "kind": "Contact export"}
            size = len(exports.render_json(about, sections)) + len(exports.render_xlsx(about, sections))
            assert size
            return elapsed, elapsed + time.perf_counter() - t

        def raw_select():
            t = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT a.name, c.public_id, k.public_id, g.name, c.direction, c.started_at, c.ended_at, "
                    "c.duration_seconds, c.status, c.summary, c.transcript, c.recording_url, c.insights, "
                    "c.caller_ip, c.caller_location "
                    f"FROM {table} c JOIN workspace_agent g ON g.id = c.agent_id "
                    "JOIN workspace_contact k ON k.id = c.contact_id JOIN accounts_account a ON a.id = c.account_id "
                    "WHERE c.contact_id = %s ORDER BY c.started_at, c.id", [big.pk])
                fetched = cursor.fetchall()
            elapsed = time.perf_counter() - t
            assert len(fetched) == args.export_rows
            return elapsed

        ours_purge(), raw_purge(), ours_export(), raw_select()  # warm-up
        times = {"purge": [], "raw_update": [], "sections": [], "files": [], "raw_select": []}
        for _ in range(args.repeat):
            times["raw_update"].append(raw_purge())
            times["purge"].append(ours_purge())
            times["raw_select"].append(raw_select())
            sections, files = ours_export()
            times["sections"].append(sections)
            times["files"].append(files)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"database: {connection.vendor}; conversation rows: {args.rows + args.export_rows:,} "
              f"(built in {built:.0f} s); expired transcripts: {expired:,}; exported contact: "
              f"{args.export_rows:,} conversations; runs: {args.repeat} alternating (medians)")
        for label, ours, raw, what in (("(a) purge of the expired transcripts", "purge", "raw_update", "UPDATE"),
                                       ("(b) contact export, sections", "sections", "raw_select", "SELECT"),
                                       ("    contact export, sections + files", "files", "raw_select", "SELECT")):
            print(f"{label:<38} {med[ours]:8.3f} s  raw {what} {med[raw]:8.3f} s  ratio {med[ours] / med[raw]:6.1f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()

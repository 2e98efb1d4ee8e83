"""Migration operations for tables that are written all the time (a call writes a conversation and an audit row):
their indexes are built and dropped without blocking writes on PostgreSQL (``CONCURRENTLY``, so the migration
must say ``atomic = False``). On SQLite they are the plain operations."""

from django.db import migrations


def online(schema_editor) -> dict:
    """The schema editor's keyword for building an index without blocking writes: PostgreSQL's only."""
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class AddIndexOnline(migrations.AddIndex):
    """AddIndex, CONCURRENTLY on PostgreSQL."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, **online(schema_editor))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, **online(schema_editor))


class RemoveIndexOnline(migrations.RemoveIndex):
    """RemoveIndex, CONCURRENTLY on PostgreSQL."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index, **online(schema_editor))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.add_index(model, index, **online(schema_editor))


def drop_foreign_key_index(app_label: str, model_name: str, field_name: str,
                           field) -> migrations.SeparateDatabaseAndState:
    """The foreign key's own index goes, ``field`` (the same key with ``db_index=False``) stays: dropped by the
    name Django gave it, as AlterField would drop and re-validate the constraint over the whole table."""

    def names(apps, schema_editor) -> tuple[str, str, str]:
        meta = apps.get_model(app_label, model_name)._meta
        column = meta.get_field(field_name).column
        return meta.db_table, column, schema_editor._create_index_name(meta.db_table, [column])

    def forwards(apps, schema_editor):
        _table, _column, name = names(apps, schema_editor)
        concurrently = " CONCURRENTLY" if online(schema_editor) else ""
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}")

    def backwards(apps, schema_editor):
        table, column, name = names(apps, schema_editor)
        concurrently = " CONCURRENTLY" if online(schema_editor) else ""
        q = schema_editor.quote_name
        schema_editor.execute(f"CREATE INDEX{concurrently} IF NOT EXISTS {q(name)} ON {q(table)} ({q(column)})")

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name=model_name, name=field_name, field=field)],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )

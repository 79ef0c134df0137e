"""The database router: writes to the primary, reads where the read_replica technique says.

Shared by every technique that reads, so it lives here rather than in the technique; the
decision itself (toggle, read-your-writes, lag, health) is `shop.techniques.read_replica`'s.
"""

from shop.techniques import read_replica


class DatabaseRouter:
    def db_for_read(self, model, **hints):
        return read_replica.alias_for_read(model)

    def db_for_write(self, model, **hints):
        read_replica.note_write()
        return read_replica.PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        # A row read on the replica is the primary's row: an order may point at a user that
        # authentication read from the replica.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica replays the primary's schema; it is never migrated itself.
        return db == read_replica.PRIMARY

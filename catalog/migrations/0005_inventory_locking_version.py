"""The inventory_locking technique's version column on catalog_variant, for the optimistic
strategy and the Redis lock's database condition.

Every change of a variant's stock must move its version, or a writer holding an old version
could overwrite that change. The optimistic strategy moves it itself; the trigger moves it for
every other writer (the other strategies, a cancelled order's restock, the admin, raw SQL), so
no code path can forget. It leaves a statement that set the version alone.
"""

from django.db import migrations, models

VERSION_UPKEEP = """
CREATE FUNCTION catalog_variant_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stock IS DISTINCT FROM OLD.stock AND NEW.version = OLD.version THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_variant_version_bump
BEFORE UPDATE OF stock ON catalog_variant
FOR EACH ROW EXECUTE FUNCTION catalog_variant_version_bump();
"""

VERSION_UPKEEP_DROP = """
DROP TRIGGER catalog_variant_version_bump ON catalog_variant;
DROP FUNCTION catalog_variant_version_bump();
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_denormalized_fields_triggers")]

    operations = [
        migrations.AddField(
            model_name="variant",
            name="version",
            # db_default: rows written around the model (COPY in the seed, raw SQL) get 0 too.
            field=models.PositiveBigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.RunSQL(VERSION_UPKEEP, VERSION_UPKEEP_DROP),
    ]

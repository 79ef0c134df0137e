"""The denormalized_fields technique's catalog copies, kept right by PostgreSQL itself.

Review.author_username, Product.rating_avg and Product.review_count were kept by Python code
(catalog.services and a post_save/post_delete receiver). That missed every write that goes
around the models (a queryset update(), raw SQL, COPY) and lost updates when two writes to
one product raced. Triggers run for every write, whoever sends it:

- catalog_review_rating (AFTER INSERT, UPDATE, DELETE, once per statement): locks the
  products the statement touched in id order, then recomputes their rating and count.
- catalog_review_author_username (BEFORE INSERT or UPDATE OF author_id, per row): copies the
  author's username under a row lock that waits for a rename in flight.
- auth_user_username_to_reviews (AFTER UPDATE OF username, per row): renames the copies.

docs/techniques/denormalized_fields.md explains each lock. The functions are written out
here, not imported, so this migration stays what it was when it ran.
"""

from django.conf import settings
from django.db import migrations, models

RATING_UPKEEP = """
-- Recompute the stored rating and review count of these products: for the trigger below,
-- and once for every product at the end of this migration.
CREATE FUNCTION catalog_product_rating_recompute(product_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock first, in id order: two statements that touch the same products queue here in
    -- the same order, so they wait for each other instead of deadlocking (a user's delete
    -- cascades to reviews of many products).
    PERFORM 1 FROM catalog_product WHERE id = ANY(product_ids) ORDER BY id FOR UPDATE;
    -- A new statement, so in READ COMMITTED a new snapshot: it sees every review committed
    -- by the transactions this one just waited for, and its own.
    UPDATE catalog_product p
    SET rating_avg = s.rating_avg, review_count = s.review_count
    FROM (
        -- The read path's arithmetic exactly: AVG over integers is an exact numeric, and
        -- ROUND(numeric, 2) rounds half away from zero; 0.00 and 0 without reviews.
        SELECT q.id,
               COALESCE(ROUND(AVG(r.rating), 2), 0.00) AS rating_avg,
               COUNT(r.id) AS review_count
        FROM catalog_product q LEFT JOIN catalog_review r ON r.product_id = q.id
        WHERE q.id = ANY(product_ids)
        GROUP BY q.id
    ) s
    WHERE p.id = s.id
      AND (p.rating_avg, p.review_count) IS DISTINCT FROM (s.rating_avg, s.review_count);
END;
$$;

CREATE FUNCTION catalog_review_rating() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    product_ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT product_id) INTO product_ids FROM new_reviews;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT product_id) INTO product_ids FROM old_reviews;
    ELSE
        -- Only the rows whose rating or product changed: a rename rewrites author_username
        -- of many reviews and must not lock their products (a review being written holds
        -- its product and waits for the renamed user: that order would deadlock).
        SELECT array_agg(DISTINCT product_id) INTO product_ids FROM (
            (SELECT id, product_id, rating FROM old_reviews
             EXCEPT SELECT id, product_id, rating FROM new_reviews)
            UNION ALL
            (SELECT id, product_id, rating FROM new_reviews
             EXCEPT SELECT id, product_id, rating FROM old_reviews)
        ) changed;
    END IF;
    IF product_ids IS NOT NULL THEN
        PERFORM catalog_product_rating_recompute(product_ids);
    END IF;
    RETURN NULL;
END;
$$;

-- One trigger per event: PostgreSQL allows transition tables only on single-event triggers.
CREATE TRIGGER catalog_review_rating_insert
AFTER INSERT ON catalog_review REFERENCING NEW TABLE AS new_reviews
FOR EACH STATEMENT EXECUTE FUNCTION catalog_review_rating();

CREATE TRIGGER catalog_review_rating_update
AFTER UPDATE ON catalog_review REFERENCING OLD TABLE AS old_reviews NEW TABLE AS new_reviews
FOR EACH STATEMENT EXECUTE FUNCTION catalog_review_rating();

CREATE TRIGGER catalog_review_rating_delete
AFTER DELETE ON catalog_review REFERENCING OLD TABLE AS old_reviews
FOR EACH STATEMENT EXECUTE FUNCTION catalog_review_rating();
"""

AUTHOR_USERNAME_UPKEEP = """
CREATE FUNCTION catalog_review_author_username() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- FOR SHARE conflicts with the lock an UPDATE of the user takes, so a rename in flight
    -- is waited for and its new name read; a rename that starts later waits for this
    -- transaction, and then its own trigger sees this review. (FOR KEY SHARE, which the
    -- foreign key check takes, would not wait: a rename does not change the key.)
    SELECT username INTO NEW.author_username FROM auth_user WHERE id = NEW.author_id FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'catalog_review: no user with id %', NEW.author_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_review_author_username
BEFORE INSERT OR UPDATE OF author_id ON catalog_review
FOR EACH ROW EXECUTE FUNCTION catalog_review_author_username();

CREATE FUNCTION auth_user_username_to_reviews() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_review SET author_username = NEW.username
    WHERE author_id = NEW.id AND author_username IS DISTINCT FROM NEW.username;
    RETURN NULL;
END;
$$;

-- A login updates last_login only: UPDATE OF username and the WHEN clause skip it.
CREATE TRIGGER auth_user_username_to_reviews
AFTER UPDATE OF username ON auth_user
FOR EACH ROW WHEN (OLD.username IS DISTINCT FROM NEW.username)
EXECUTE FUNCTION auth_user_username_to_reviews();
"""

# Rows written before the triggers existed are brought in line once.
CATCH_UP = """
UPDATE catalog_review r SET author_username = u.username
FROM auth_user u WHERE u.id = r.author_id AND r.author_username IS DISTINCT FROM u.username;
SELECT catalog_product_rating_recompute(ARRAY(SELECT id FROM catalog_product));
"""

DROP = """
DROP TRIGGER IF EXISTS auth_user_username_to_reviews ON auth_user;
DROP FUNCTION IF EXISTS auth_user_username_to_reviews();
DROP TRIGGER IF EXISTS catalog_review_author_username ON catalog_review;
DROP FUNCTION IF EXISTS catalog_review_author_username();
DROP TRIGGER IF EXISTS catalog_review_rating_insert ON catalog_review;
DROP TRIGGER IF EXISTS catalog_review_rating_update ON catalog_review;
DROP TRIGGER IF EXISTS catalog_review_rating_delete ON catalog_review;
DROP FUNCTION IF EXISTS catalog_review_rating();
DROP FUNCTION IF EXISTS catalog_product_rating_recompute(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_db_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # A database default makes Django return the column from the INSERT (RETURNING), so
        # review_create hands back the name the trigger stored, with no extra query.
        migrations.AlterField(
            model_name="review",
            name="author_username",
            field=models.CharField(db_default="", max_length=150),
        ),
        migrations.RunSQL(RATING_UPKEEP + AUTHOR_USERNAME_UPKEEP + CATCH_UP, DROP),
    ]

"""segment index: each user's tags and attribute values as narrow rows, kept by triggers (PostgreSQL)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 15:00:00

A segment count such as "holds T0, tagged vip, city 上海" read the JSONB of every candidate user on
PostgreSQL (the GIN indexes of 0017 narrow the rows but their results are always rechecked on the row), about
200 ms over a million users. ``user_tag (tag, user_id)`` and ``user_attribute_value (key, value, user_id)``
answer the same conditions from their primary keys alone (index-only scans, ~85 ms for that count;
docs/benchmarks.md). Statement-level triggers with transition tables keep them in step with every write
to ``wechat_user`` (one set-based statement per table, so a COPY or a 1,000-row upsert is not a trigger call
per row), deletes and TRUNCATE included. No foreign key: its per-row check doubled the cost of writing
users (50,000 inserted: 2.4 s without, 4.7 s with), and the triggers already remove a deleted user's rows.
The GIN indexes have no reader left and are dropped.

SQLite gets the tables (the models declare them) but no triggers: they stay empty there, and its segment
SQL keeps reading the JSON, which meets its target.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TAG_LENGTH = 32
KEY_LENGTH = 40
VALUE_LENGTH = 256

# The segment-index rows of the users in ``:users`` (a transition table, or wechat_user itself below).
# Only strings are tags (``tags @> '["vip"]'`` never matched a number); an attribute's text is what
# ``->>`` gives and a JSON null is no value; nothing longer than a filter can name (32, 40 and 256
# characters, the models' INDEXED_* lengths) is kept.
TAG_ROWS = """
    INSERT INTO user_tag (tag, user_id)
    SELECT DISTINCT t.value #>> '{}', n.id
    FROM :users,
         jsonb_array_elements(CASE WHEN jsonb_typeof(n.tags) = 'array' THEN n.tags ELSE '[]' END) t
    WHERE jsonb_typeof(t.value) = 'string' AND char_length(t.value #>> '{}') <= 32;
"""
ATTRIBUTE_ROWS = """
    INSERT INTO user_attribute_value (key, value, user_id)
    SELECT e.key, e.value, n.id
    FROM :users,
         jsonb_each_text(CASE WHEN jsonb_typeof(n.attributes) = 'object' THEN n.attributes ELSE '{}' END) e
    WHERE e.value IS NOT NULL AND char_length(e.key) <= 40 AND char_length(e.value) <= 256;
"""
# An UPDATE rewrites the rows of the users whose tags (or attributes) changed, and only those: a login
# that sets last_login_at costs one comparison per row.
CHANGED_TAGS = "new_rows n JOIN old_rows o ON o.id = n.id AND n.tags IS DISTINCT FROM o.tags"
CHANGED_ATTRIBUTES = (
    "new_rows n JOIN old_rows o ON o.id = n.id AND n.attributes IS DISTINCT FROM o.attributes"
)

FUNCTIONS = {
    "tz_segment_index_inserted": TAG_ROWS.replace(":users", "new_rows n")
    + ATTRIBUTE_ROWS.replace(":users", "new_rows n"),
    "tz_segment_index_updated": "DELETE FROM user_tag WHERE user_id = ANY (ARRAY (SELECT n.id FROM :users));".replace(
        ":users", CHANGED_TAGS
    )
    + TAG_ROWS.replace(":users", CHANGED_TAGS)
    + "DELETE FROM user_attribute_value WHERE user_id = ANY (ARRAY (SELECT n.id FROM :users));".replace(
        ":users", CHANGED_ATTRIBUTES
    )
    + ATTRIBUTE_ROWS.replace(":users", CHANGED_ATTRIBUTES),
    "tz_segment_index_deleted": "DELETE FROM user_tag WHERE user_id = ANY (ARRAY (SELECT id FROM old_rows));"
    "DELETE FROM user_attribute_value WHERE user_id = ANY (ARRAY (SELECT id FROM old_rows));",
    "tz_segment_index_truncated": "DELETE FROM user_tag; DELETE FROM user_attribute_value;",
}
TRIGGERS = {
    "tz_segment_index_inserted": "AFTER INSERT ON wechat_user REFERENCING NEW TABLE AS new_rows",
    "tz_segment_index_updated": (
        "AFTER UPDATE ON wechat_user REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "tz_segment_index_deleted": "AFTER DELETE ON wechat_user REFERENCING OLD TABLE AS old_rows",
    "tz_segment_index_truncated": "AFTER TRUNCATE ON wechat_user",
}


def upgrade():
    op.create_table(
        "user_tag",
        sa.Column("tag", sa.String(length=TAG_LENGTH), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tag", "user_id", name=op.f("pk_user_tag")),
    )
    op.create_index(op.f("ix_user_tag_user_id"), "user_tag", ["user_id"], unique=False)
    op.create_table(
        "user_attribute_value",
        sa.Column("key", sa.String(length=KEY_LENGTH), nullable=False),
        sa.Column("value", sa.String(length=VALUE_LENGTH), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "value", "user_id", name=op.f("pk_user_attribute_value")),
    )
    op.create_index(
        op.f("ix_user_attribute_value_user_id"), "user_attribute_value", ["user_id"], unique=False
    )
    for column in ("tags", "attributes"):
        op.drop_index(f"ix_wechat_user_{column}", table_name="wechat_user")
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, body in FUNCTIONS.items():
        # The triggers touch the rows of the users one statement wrote, found through the user_id
        # indexes (``user_id = ANY (ARRAY (...))``, an index condition, not a join the planner may turn
        # into a scan). Right after a bulk load, before (auto)ANALYZE, a join scanned all of
        # user_attribute_value for each 1,000-user batch (295 ms of a 403 ms batch); with sequential
        # scans off inside these functions stale statistics cannot choose that either.
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET enable_seqscan = off"
            f" AS $$ BEGIN {body} RETURN NULL; END $$"
        )
        op.execute(f"CREATE TRIGGER {name} {TRIGGERS[name]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    # The users already there.
    op.execute(
        TAG_ROWS.replace(":users", "wechat_user n") + ATTRIBUTE_ROWS.replace(":users", "wechat_user n")
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in FUNCTIONS:
            op.execute(f"DROP TRIGGER {name} ON wechat_user")
            op.execute(f"DROP FUNCTION {name}()")
    for column in ("tags", "attributes"):
        op.create_index(
            f"ix_wechat_user_{column}",
            "wechat_user",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "jsonb_path_ops"},
            sqlite_where=sa.false(),
        )
    op.drop_index(op.f("ix_user_attribute_value_user_id"), table_name="user_attribute_value")
    op.drop_table("user_attribute_value")
    op.drop_index(op.f("ix_user_tag_user_id"), table_name="user_tag")
    op.drop_table("user_tag")

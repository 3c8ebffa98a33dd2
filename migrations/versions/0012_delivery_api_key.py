"""deliveries remember the API key that created them, and the body it was asked with

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 06:30:00

A key reads only the deliveries it created unless it has the ``read_all`` scope, so
``delivery.api_key_id`` (a bare integer since 0003) becomes a foreign key to ``api_key``. It needs no
index of its own: ``uq_delivery_api_key_idempotency`` (api_key_id, idempotency_key) leads with it.
``delivery.request_digest`` keeps a digest of the request body, so a reused Idempotency-Key with
another body is refused (409) instead of answered with the first message.

Keys that could only read (scope ``read``) read every API message until now; they become ``read_all``
so the back ends using them keep working. ``read`` now means reading what the key itself sent.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

api_key = sa.table("api_key", sa.column("id", sa.Integer), sa.column("scopes", sa.String))
delivery = sa.table("delivery", sa.column("api_key_id", sa.Integer))


def upgrade():
    # Keys are revoked, never deleted, so no delivery should point at a missing key; if one does (a
    # hand-deleted row), it loses the reference rather than stopping the upgrade.
    op.execute(
        delivery.update()
        .where(delivery.c.api_key_id.is_not(None), delivery.c.api_key_id.not_in(sa.select(api_key.c.id)))
        .values(api_key_id=None)
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_delivery_api_key_id_api_key"),
            "api_key",
            ["api_key_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(api_key.update().where(api_key.c.scopes == "read").values(scopes="read_all"))


def downgrade():
    op.execute(api_key.update().where(api_key.c.scopes == "read_all").values(scopes="read"))
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_delivery_api_key_id_api_key"), type_="foreignkey")
        batch_op.drop_column("request_digest")

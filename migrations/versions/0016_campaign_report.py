"""campaign report: why a campaign is held, as a code and its numbers instead of an English sentence

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:40:00

``campaign.pause_reason`` held English sentences, shown as they were in the Chinese console. It becomes
``hold_code`` (``operator``, ``quota``, ``failure_rate``, ``template``, ``segment``, ``values``) and
``hold_args`` (the numbers the sentence needs), which the page translates and the API writes out in
English. The sentences written by earlier versions are read back into codes; downgrading writes them
out again. Only the ``campaign`` table is touched.
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# What earlier versions wrote, and the same sentences for a downgrade (kept here: a migration must not
# change when the code does).
_OPERATOR = "Paused by an operator."
_QUOTA = "WeChat's daily sending quota is used up (45009)."
_FAILURES = re.compile(r"^(\d+) of (\d+) sends failed, more than the (\d+)% allowed\.$")

campaign = sa.table(
    "campaign",
    sa.column("id", sa.Integer),
    sa.column("pause_reason", sa.String),
    sa.column("hold_code", sa.String),
    sa.column("hold_args", sa.JSON),
)


def _code(sentence: str) -> tuple[str, dict]:
    if not sentence:
        return "", {}
    if sentence == _QUOTA:
        return "quota", {}
    match = _FAILURES.match(sentence)
    if match:
        failed, answered, threshold = (int(group) for group in match.groups())
        return "failure_rate", {"failed": failed, "answered": answered, "threshold": threshold}
    return "operator", {}


def _sentence(code: str, args: dict) -> str:
    if code == "quota":
        return _QUOTA
    if code == "failure_rate":
        return f"{args.get('failed')} of {args.get('answered')} sends failed, more than the {args.get('threshold')}% allowed."
    return _OPERATOR if code == "operator" else ""


def upgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("hold_args", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(campaign.c.id, campaign.c.pause_reason)).all()
    for row in rows:
        code, args = _code(row.pause_reason or "")
        connection.execute(
            sa.update(campaign).where(campaign.c.id == row.id).values(hold_code=code, hold_args=args)
        )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.alter_column("hold_code", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("hold_args", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("pause_reason")


def downgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=200), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(campaign.c.id, campaign.c.hold_code, campaign.c.hold_args)).all()
    for row in rows:
        args = row.hold_args
        if isinstance(args, str):
            args = json.loads(args or "{}")
        connection.execute(
            sa.update(campaign)
            .where(campaign.c.id == row.id)
            .values(pause_reason=_sentence(row.hold_code or "", args or {}))
        )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.alter_column("pause_reason", existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_column("hold_args")
        batch_op.drop_column("hold_code")

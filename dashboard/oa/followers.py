"""The Official Account's followers: the sync, the follow/unfollow events, and the unionid join.

**Sync** (``flask sync-followers``): page through ``user/get`` (``next_openid``), and for each page ask
``user/info/batchget`` 100 openids at a time (``subscribe``, ``subscribe_time``, ``unionid``); each
batch is written in its own short transaction, never while WeChat is being asked. When every page was
read, a follower still marked following that the sync did not see has stopped following (its
``unsubscribe`` event was missed).

**Events** (``subscribe`` / ``unsubscribe`` on ``/wechat/oa-push``) change a follower at once.

**Which answer wins.** Each row keeps ``changed_at``, the time from which its state is known to hold:
the moment a sync asked WeChat, or for an event the end of its CreateTime's second (CreateTime has whole
seconds, so the event happened at the latest then). A sync writes a follower's state only when its own
question is newer than that, so an unfollow that arrives while a sync is running is not undone by the
sync's older answer; an event is applied unless a newer fact is already there (a late retry of an old
event). Between syncs, the newer sync wins.

**The join.** A mini-program user and a follower with the same ``unionid`` are one person. The join is
made when read (:func:`follower_for_user`, :func:`user_for_follower`, :func:`joined`), so it holds
whichever of the two Tongzhi learned first and whenever the unionid arrived. A follower with no
mini-program user is a person too: Tongzhi can message them through the Official Account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import select

from ..extensions import db
from ..models import WechatUser
from ..models.oa import OaFollower
from ..models.types import utcnow
from ..wechat.oa import BATCHGET_MAX, FollowerInfo, OfficialAccountClient

log = logging.getLogger(__name__)

CREATE_TIME_RESOLUTION = timedelta(seconds=1)
MAX_PAGES = 100_000  # 10,000 openids a page: a billion followers, far beyond any account


@dataclass
class SyncResult:
    """What a sync did: ``total`` is WeChat's follower count, ``seen`` the openids listed, ``added`` new
    rows, ``updated`` rows whose state the sync changed, ``unfollowed`` rows it found no longer
    following (in batchget or missing from the listing), ``kept`` rows an event had changed more
    recently than the sync's answer."""

    total: int = 0
    pages: int = 0
    seen: int = 0
    added: int = 0
    updated: int = 0
    unfollowed: int = 0
    kept: int = 0


def _at(unix_seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix_seconds, UTC) if unix_seconds else None


def _insert():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _ensure_rows(openids: Iterable[str], now: datetime) -> set[str]:
    """Insert a blank row for each openid that has none (concurrent writers welcome); the new ones."""
    values = [
        {"openid": openid, "following": False, "created_at": now, "changed_at": None}
        for openid in dict.fromkeys(openids)
    ]
    if not values:
        return set()
    table = OaFollower.__table__
    inserted = db.session.execute(
        _insert()(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["openid"])
        .returning(table.c.openid)
    )
    return set(inserted.scalars())


def _rows(openids: Sequence[str], lock: bool = True) -> dict[str, OaFollower]:
    statement = select(OaFollower).where(OaFollower.openid.in_(list(openids)))
    if lock:
        statement = statement.with_for_update()
    return {row.openid: row for row in db.session.scalars(statement)}


def apply_batch(infos: Sequence[FollowerInfo], observed_at: datetime, result: SyncResult) -> None:
    """Write one batchget answer (asked at ``observed_at``) into the session; the caller commits."""
    new = _ensure_rows((info.openid for info in infos), observed_at)
    result.added += len(new)
    rows = _rows([info.openid for info in infos])
    for info in infos:
        row = rows[info.openid]
        row.synced_at = observed_at
        if info.unionid:
            row.unionid = info.unionid
        if row.changed_at is not None and row.changed_at > observed_at:
            result.kept += 1  # an event newer than our question decided
            continue
        before = (row.following, row.followed_at)
        row.changed_at = observed_at
        if info.subscribe:
            row.following = True
            row.followed_at = _at(info.subscribe_time) or row.followed_at or observed_at
            row.unfollowed_at = None
        elif row.following or row.openid in new:
            if row.following:
                result.unfollowed += 1
            row.following = False
            row.unfollowed_at = observed_at
        if row.openid not in new and before != (row.following, row.followed_at):
            result.updated += 1


def _mark_missing(started_at: datetime, result: SyncResult) -> None:
    """Followers the finished sync did not list, with nothing newer than its start, have unfollowed."""
    missing = (
        sa.update(OaFollower)
        .where(
            OaFollower.following.is_(True),
            sa.or_(OaFollower.synced_at.is_(None), OaFollower.synced_at < started_at),
            sa.or_(OaFollower.changed_at.is_(None), OaFollower.changed_at < started_at),
        )
        .values(following=False, unfollowed_at=started_at, changed_at=started_at)
        .execution_options(synchronize_session=False)
    )
    result.unfollowed += db.session.execute(missing).rowcount or 0


def sync_followers(
    client: OfficialAccountClient,
    *,
    batch_size: int = BATCHGET_MAX,
    clock: Callable[[], datetime] = utcnow,
    on_page: Callable[[int, list[str]], None] | None = None,
) -> SyncResult:
    """Read every follower from WeChat and bring ``oa_follower`` up to date.

    Commits after each batch (the session holds no transaction while WeChat is asked).

    :raise WeChatError: WeChat refused (nothing after the failed call is written; what was written
        stays, and a later sync goes on from the top).
    """
    batch_size = max(1, min(batch_size, BATCHGET_MAX))
    result = SyncResult()
    db.session.commit()  # nothing of the caller's may stay open across WeChat calls
    started_at = clock()
    next_openid = ""
    seen_anchors: set[str] = set()
    for _ in range(MAX_PAGES):
        page = client.get_followers(next_openid)
        result.total = page.total
        if not page.openids:
            break
        result.pages += 1
        result.seen += len(page.openids)
        if on_page is not None:
            on_page(result.pages, page.openids)
        for start in range(0, len(page.openids), batch_size):
            chunk = page.openids[start : start + batch_size]
            observed_at = clock()
            infos = client.get_followers_info(chunk)
            apply_batch(infos, observed_at, result)
            db.session.commit()
        if not page.next_openid or page.next_openid in seen_anchors:
            break
        seen_anchors.add(page.next_openid)
        next_openid = page.next_openid
    else:  # pragma: no cover - an account with more than a billion followers
        log.warning("follower sync stopped after %d pages", MAX_PAGES)
        return result
    _mark_missing(started_at, result)
    db.session.commit()
    log.info(
        "follower sync: %d followers at WeChat, %d listed, %d new, %d changed, %d no longer following",
        result.total,
        result.seen,
        result.added,
        result.updated,
        result.unfollowed,
    )
    return result


def record_follow_event(openid: str, following: bool, occurred_at: datetime) -> OaFollower | None:
    """A ``subscribe`` (``following``) or ``unsubscribe`` event: into the session, the caller commits.

    Returns the follower, or None when a newer fact was already recorded (a late retry of an old
    event), in which case nothing changes.
    """
    _ensure_rows([openid], occurred_at)
    row = _rows([openid])[openid]
    holds_from = occurred_at + CREATE_TIME_RESOLUTION
    if row.changed_at is not None and row.changed_at > holds_from:
        return None
    row.changed_at = holds_from
    if following:
        if not row.following:
            row.followed_at = occurred_at
        row.following = True
        row.unfollowed_at = None
    else:
        row.following = False
        row.unfollowed_at = occurred_at
    return row


# -- the join -------------------------------------------------------------------------------------------


def follower_for_user(user: WechatUser) -> OaFollower | None:
    """The follower who is the same person as ``user`` (same unionid), if Tongzhi knows one."""
    if not user.unionid:
        return None
    return db.session.scalar(
        select(OaFollower)
        .where(OaFollower.unionid == user.unionid)
        .order_by(OaFollower.following.desc(), OaFollower.id.desc())
        .limit(1)
    )


def user_for_follower(follower: OaFollower) -> WechatUser | None:
    """The mini-program user who is the same person as ``follower`` (same unionid), if any."""
    if not follower.unionid:
        return None
    return db.session.scalar(
        select(WechatUser).where(WechatUser.unionid == follower.unionid).order_by(WechatUser.id).limit(1)
    )


def joined():
    """``SELECT wechat_user, oa_follower`` joined on unionid (full outer in spirit: use with
    ``isouter=True`` on either side). For reach counts and sends: a person is a user, a follower, or both."""
    return select(WechatUser, OaFollower).join(
        OaFollower, sa.and_(OaFollower.unionid == WechatUser.unionid, WechatUser.unionid.is_not(None))
    )


def follower_counts() -> dict[str, int]:
    """Followers now, openids known, and how many of the followers are joined to a mini-program user."""
    following = db.session.scalar(select(sa.func.count()).where(OaFollower.following.is_(True))) or 0
    known = db.session.scalar(select(sa.func.count()).select_from(OaFollower)) or 0
    joined_count = (
        db.session.scalar(
            select(sa.func.count(sa.distinct(OaFollower.id))).where(
                OaFollower.following.is_(True),
                OaFollower.unionid.is_not(None),
                sa.exists().where(WechatUser.unionid == OaFollower.unionid),
            )
        )
        or 0
    )
    return {"following": following, "known": known, "joined": joined_count}


def following_openids(user_ids: Iterable[int], session=None) -> dict[int, str]:
    """For mini-program users, the Official Account openid of the follower who is the same person and
    follows now (same unionid); users who do not follow are absent. One query for a batch: the engine's
    claim (in its own ``session``), the send API's check and the reach counts all ask this
    (``dispatch.channels``)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = (
        (session or db.session)
        .execute(
            select(WechatUser.id, OaFollower.openid)
            .join(OaFollower, OaFollower.unionid == WechatUser.unionid)
            .where(WechatUser.id.in_(ids), WechatUser.unionid.is_not(None), OaFollower.following.is_(True))
            .order_by(WechatUser.id, OaFollower.id.desc())
        )
        .all()
    )
    found: dict[int, str] = {}
    for user_id, openid in rows:
        found.setdefault(user_id, openid)  # two following openids for one unionid: the newest row
    return found


def follows_now(oa_openid: str) -> bool:
    """Whether this Official Account openid follows now (a follower with no mini-program user)."""
    return bool(
        db.session.scalar(
            select(sa.func.count()).where(OaFollower.openid == oa_openid, OaFollower.following.is_(True))
        )
    )

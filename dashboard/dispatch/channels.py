"""Which channel a message goes out on: the one table every path asks (claim, send API, reach counts).

A delivery asks for a ``Channel``; what it can use depends on two facts about its user at that moment:
whether they hold a credit (a live grant) for the subscribe template, and whether they follow the linked
Official Account (through the unionid: ``oa.followers``). ``choose()`` is the whole rule; the engine's
claim calls it per row after asking the ledger for a credit, and the send API calls it to refuse with
409 ``no_channel`` before writing anything, so the two cannot disagree.

=========================  ==========  ============  ===================================
channel asked              credit      follows OA    outcome
=========================  ==========  ============  ===================================
mp_subscribe               yes         any           mp_subscribe
mp_subscribe               no          any           skipped ``no_grant`` (the ledger's own reason)
oa_template                any         yes           oa_template
oa_template                any         no            skipped ``not_following``
mp_subscribe_or_oa         yes         any           mp_subscribe (the credit is spent)
mp_subscribe_or_oa         no          yes           oa_template
mp_subscribe_or_oa         no          no            skipped ``no_channel``
=========================  ==========  ============  ===================================

An ``oa_template`` outcome also needs an Official Account template on the delivery: a row that would go
through the Official Account but names no OA template is skipped ``no_oa_template``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Channel

NOT_FOLLOWING = "not_following"  # oa_template asked, the user does not follow the Official Account
NO_CHANNEL = "no_channel"  # mp_subscribe_or_oa asked: no credit, and no follow either
NO_OA_TEMPLATE = "no_oa_template"  # the OA channel was chosen but the delivery names no OA template


@dataclass(frozen=True)
class ChannelChoice:
    """``channel`` to send on, or None and the ``reason`` the row is skipped with."""

    channel: Channel | None
    reason: str = ""

    @property
    def sends(self) -> bool:
        return self.channel is not None


def choose(
    asked: Channel | str,
    *,
    holds_credit: bool,
    follows: bool,
    has_oa_template: bool = True,
    credit_refusal: str = "no_grant",
) -> ChannelChoice:
    """The channel for one message, from what was asked and the user's credit and follow (table above).

    ``holds_credit``: the ledger reserved (or would reserve) a credit; ``credit_refusal`` is the ledger's
    reason when it did not (``no_grant``, ``budget``), kept for ``mp_subscribe`` rows as they were before
    channels existed.
    """
    asked = Channel(asked)
    if asked is Channel.mp_subscribe:
        return ChannelChoice(Channel.mp_subscribe) if holds_credit else ChannelChoice(None, credit_refusal)
    if asked is Channel.mp_subscribe_or_oa and holds_credit:
        return ChannelChoice(Channel.mp_subscribe)
    if not follows:
        return ChannelChoice(None, NOT_FOLLOWING if asked is Channel.oa_template else NO_CHANNEL)
    if not has_oa_template:
        return ChannelChoice(None, NO_OA_TEMPLATE)
    return ChannelChoice(Channel.oa_template)


def client_msg_id(delivery_id: int) -> str:
    """The Official Account's de-dup key for a delivery: the same for every attempt of one delivery, so a
    retry inside WeChat's de-dup window cannot deliver it twice, and different for every delivery."""
    return f"tongzhi-{delivery_id}"

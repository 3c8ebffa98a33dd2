"""Idempotency-Key replays, decided the same way for ``/api/mp`` and ``/api/v1``.

A request that reuses an Idempotency-Key repeats the first one when its JSON body has the same digest
(``validation.digest``: key order and whitespace do not matter); with another body it asks for something
else under a used key, and both APIs refuse it with a 409 rather than answer with the first result.
Keys belong to their caller (the user for ``/api/mp``, the API key for ``/api/v1``): two callers that
pick the same key never meet.
"""

from __future__ import annotations


def is_replay(first_digest: str | None, digest: str) -> bool:
    """Whether a request whose body has ``digest`` repeats the first one made with its key.

    ``first_digest`` is None for an API delivery recorded before digests were kept: it was checked for
    the same user and template then, and a retry of it is still answered as a replay.
    """
    return first_digest is None or first_digest == digest

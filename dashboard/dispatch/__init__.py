"""Dispatch: turning delivery rows into WeChat calls, exactly once per grant, at most once per user.

The database is the queue of record. A worker claims due rows and reserves their credits in one
transaction (``claim``), calls WeChat outside any transaction (``sender``), then records every answer
in one batched transaction whose updates are fenced by the attempt number (``finalize``). A row whose
worker died stays ``sending`` until its lease expires; the reconciler then marks it ``unknown`` if its
start was recorded (the message may have left), or puts it back in the queue if it was only claimed
ahead (``finalize``). WeChat's delivery event may later settle an unknown (``sent_events``). Huey only
carries kicks and ticks (``tasks``).
"""

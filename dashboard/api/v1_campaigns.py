"""``/api/v1/campaigns``: compose, launch, pause, resume, cancel and read campaigns (API-key scope ``campaigns``).

The routes live on the ``/api/v1`` blueprint (``api.v1``), so they answer errors in its JSON shape. Each
view parses, calls ``campaigns.services``, and answers; a move the state machine forbids is 409
``invalid_state`` with the sentence that says why.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

from flask import jsonify

from ..access import public
from ..campaigns import recurring, services
from ..campaigns.states import InvalidTransition
from ..deliveries.opens import CAMPAIGN_PAGE_MAX_LENGTH
from ..deliveries.send_requests import LANGS, STATES
from ..dispatch.tasks import kick_dispatch
from ..extensions import db
from ..models.campaign import DEFAULT_QUIET_END, DEFAULT_QUIET_START, Campaign
from ..storable import DB_INT_MAX
from .errors import ApiError
from .v1 import _authenticated, bp
from .validation import TEMPLATE_ID_RE, read_json_body

MAX_BODY_BYTES = 64 * 1024
MAX_RATE = 10_000
NAME_MAX = 120
VALUE_MAX = 512
CLOCK_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
FIELDS = {
    "name",
    "template_id",
    "segment_id",
    "data",
    "page",
    "miniprogram_state",
    "lang",
    "scheduled_at",
    "rate_per_second",
    "quiet_hours",
    "schedule",
    "reminder",
    # Issue 15: the channel asked, and the Official Account's template and values (``data``'s form).
    "channel",
    "oa_template_id",
    "oa_data",
}
RUNS_LISTED = 100


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field=field)


def _text(body: dict, name: str, limit: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, "missing_field", f"{name} is required.", field=name)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _invalid(name, f"{name} must be a non-empty string of at most {limit} characters.")
    return value.strip()


def _whole(value: Any, low: int, high: int) -> int | None:
    """A JSON integer (``3`` or ``3.0``: JSON Schema calls both integers) within [low, high], else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _data(value: Any, field: str = "data") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(field, f"{field} must be an object of keywords.")
    for key, entry in value.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            raise _invalid(f"{field}.{key}", f'{key}: give {{"value": "..."}} (and optionally "fallback").')
        for name, text in entry.items():
            if name not in ("value", "fallback") or not isinstance(text, str) or len(text) > VALUE_MAX:
                raise _invalid(
                    f"{field}.{key}", f"{key}: only value and fallback, strings of at most {VALUE_MAX}."
                )
    return value


def _scheduled_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _invalid(
            "scheduled_at",
            "scheduled_at must be an ISO 8601 time with its offset, e.g. 2026-12-24T09:00:00+08:00.",
        )
    return moment


def _clock(value: Any, field: str, default: time) -> time:
    if value is None:
        return default
    if not isinstance(value, str) or not CLOCK_RE.match(value):
        raise _invalid(field, f"{field} must be a local time HH:MM.")
    return time.fromisoformat(value)


def _reminder(value: Any) -> dict[str, Any]:
    """The reminder's JSON shape and its steps' values as ``data`` is checked; the rest (the attribute
    declared, the offsets, the values against the template) is judged by ``services.create_campaign``."""
    if not isinstance(value, dict):
        raise _invalid("reminder", "reminder must be an object with attribute, time and steps.")
    steps = value.get("steps")
    if isinstance(steps, list):
        for index, step in enumerate(steps):
            for name in ("data", "oa_data"):
                if isinstance(step, dict) and name in step:
                    try:
                        _data(step[name], name)
                    except ApiError as bad:
                        raise _invalid(f"reminder.steps[{index}].{bad.field}", bad.message) from None
    return value


def parse_body(body: Any) -> dict[str, Any]:
    """The campaign's fields from the JSON body. :raise ApiError: 400/422 naming the field."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object.")
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise ApiError(422, "unexpected_field", f"Unknown field {extra[0]!r}.", field=extra[0])
    channel = body.get("channel", "mp_subscribe")
    if channel not in services.CHANNELS:
        raise _invalid("channel", f"channel must be one of {', '.join(services.CHANNELS)}.")
    # A campaign only on the Official Account has no mini-program template (``services.uses_mp``).
    template_id = _text(body, "template_id", 64, required=services.uses_mp(channel))
    if template_id is not None and not TEMPLATE_ID_RE.match(template_id):
        raise _invalid("template_id", "template_id must be a WeChat template ID.")
    oa_template_id = _text(body, "oa_template_id", 64, required=services.uses_oa(channel))
    if "oa_template_id" in body and not services.uses_oa(channel):
        raise _invalid(
            "oa_template_id", "oa_template_id is for the oa_template and mp_subscribe_or_oa channels."
        )
    if oa_template_id is not None and not TEMPLATE_ID_RE.match(oa_template_id):
        raise _invalid("oa_template_id", "oa_template_id must be an Official Account template ID.")
    if "oa_data" in body and not services.uses_oa(channel):
        raise _invalid("oa_data", "oa_data is for the oa_template and mp_subscribe_or_oa channels.")
    reminder = body.get("reminder")
    segment_id = None
    if body.get("segment_id") is None:
        if reminder is None:  # a date reminder's segment is optional: it narrows the users due
            raise ApiError(422, "missing_field", "segment_id is required.", field="segment_id")
    else:
        segment_id = _whole(body["segment_id"], 1, DB_INT_MAX)
        if segment_id is None:
            raise _invalid("segment_id", "segment_id must be a segment's id.")
    state, lang = _text(body, "miniprogram_state", 16), _text(body, "lang", 8)
    if state is not None and state not in STATES:
        raise _invalid("miniprogram_state", f"miniprogram_state must be one of {', '.join(STATES)}.")
    if lang is not None and lang not in LANGS:
        raise _invalid("lang", f"lang must be one of {', '.join(LANGS)}.")
    rate = body.get("rate_per_second")
    if rate is not None:
        rate = _whole(rate, 1, MAX_RATE)
        if rate is None:
            raise _invalid("rate_per_second", f"rate_per_second must be a whole number from 1 to {MAX_RATE}.")
    fields = {
        "name": _text(body, "name", NAME_MAX, required=True),
        "template_id": template_id,
        "segment_id": segment_id,
        "data": _data(body.get("data")),
        "channel": channel,
        "oa_template_id": oa_template_id,
        "oa_data": _data(body.get("oa_data"), "oa_data"),
        "page": _text(body, "page", CAMPAIGN_PAGE_MAX_LENGTH),
        "miniprogram_state": state,
        "lang": lang,
        "scheduled_at": _scheduled_at(body.get("scheduled_at")),
        "rate_per_second": rate,
    }
    if body.get("schedule") is not None:
        try:
            fields["schedule"] = recurring.parse_schedule(body["schedule"])
        except recurring.BadSchedule as bad:
            raise _invalid(bad.field, bad.message) from None
    if reminder is not None:
        fields["reminder"] = _reminder(reminder)
    quiet = body.get("quiet_hours")
    if quiet is not None:
        if not isinstance(quiet, dict) or set(quiet) - {"start", "end"}:
            raise _invalid("quiet_hours", 'quiet_hours must be an object {"start": "21:00", "end": "08:00"}.')
        fields["quiet_start"] = _clock(quiet.get("start"), "quiet_hours.start", DEFAULT_QUIET_START)
        fields["quiet_end"] = _clock(quiet.get("end"), "quiet_hours.end", DEFAULT_QUIET_END)
        if fields["quiet_start"] == fields["quiet_end"]:  # an empty window: no quiet hours
            fields["quiet_start"] = fields["quiet_end"] = None
    return fields


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "state": campaign.state.value,
        "pause_reason": campaign.pause_reason or None,
        "template_id": campaign.template_id or None,
        "data": campaign.data or {},
        "channel": campaign.channel,
        "oa_template_id": campaign.oa_template_id,
        "oa_data": campaign.oa_data,
        "segment_id": campaign.segment_id,
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
        "rate_per_second": campaign.rate_per_second,
        "schedule": campaign.schedule,
        "timezone": campaign.timezone,
        "next_occurrence_at": _iso(campaign.next_occurrence_at),
        "parent_id": campaign.parent_id,
        "occurrence_at": _iso(campaign.occurrence_at),
        "reminder": _reminder_json(campaign.reminder),
        "counts": services.counts(campaign),
    }


def _reminder_json(reminder: dict[str, Any] | None) -> dict[str, Any] | None:
    if reminder is None:
        return None
    return {"attribute": reminder["attribute"], "time": reminder["time"], "steps": reminder["steps"]}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise ApiError(404, "not_found", "No campaign has this id.")
    return campaign


def _refused(error: services.CampaignError) -> ApiError:
    return ApiError(error.status, error.code, error.message, field=error.field)


@bp.route("/campaigns", methods=("POST",))
@public
def create_campaign():
    """A new campaign in state draft (201)."""
    _authenticated("campaigns")
    fields = parse_body(read_json_body(MAX_BODY_BYTES))
    try:
        campaign = services.create_campaign(fields)
    except services.CampaignError as error:
        raise _refused(error) from None
    return jsonify(campaign_json(campaign)), 201


@bp.route("/campaigns/<int:campaign_id>", methods=("GET",))
@public
def get_campaign(campaign_id: int):
    _authenticated("campaigns")
    return jsonify(campaign_json(_campaign(campaign_id)))


@bp.route("/campaigns/<int:campaign_id>/runs", methods=("GET",))
@public
def campaign_runs(campaign_id: int):
    """A recurring campaign's runs, one per occurrence, newest first (the last 100)."""
    _authenticated("campaigns")
    _campaign(campaign_id)
    rows = db.session.scalars(recurring.runs_query(campaign_id).limit(RUNS_LISTED)).all()
    return jsonify({"runs": [campaign_json(row) for row in rows]})


def _move(campaign_id: int, action) -> Any:
    _authenticated("campaigns")
    _campaign(campaign_id)
    try:
        campaign = action(campaign_id)
    except InvalidTransition as refused:
        raise ApiError(409, "invalid_state", refused.message) from None
    except services.CampaignError as error:
        raise _refused(error) from None
    kick_dispatch()
    return jsonify(campaign_json(campaign))


@bp.route("/campaigns/<int:campaign_id>/launch", methods=("POST",))
@public
def launch_campaign(campaign_id: int):
    """Start now (state running: its recipients are fixed), or state scheduled when scheduled_at is ahead."""
    return _move(campaign_id, services.launch)


@bp.route("/campaigns/<int:campaign_id>/pause", methods=("POST",))
@public
def pause_campaign(campaign_id: int):
    return _move(campaign_id, services.pause)


@bp.route("/campaigns/<int:campaign_id>/resume", methods=("POST",))
@public
def resume_campaign(campaign_id: int):
    return _move(campaign_id, services.resume)


@bp.route("/campaigns/<int:campaign_id>/cancel", methods=("POST",))
@public
def cancel_campaign(campaign_id: int):
    return _move(campaign_id, services.cancel)

"""The campaign part of the ``/api/v1`` OpenAPI document (``v1_openapi.openapi_document`` merges it in).

What the schemas allow is what ``api.v1_campaigns.parse_body`` takes (tests/api/test_schemathesis.py)."""

from __future__ import annotations

from typing import Any

from ..campaigns.recurring import CRON_MAX
from ..campaigns.reminders import MAX_OFFSET_DAYS, MAX_STEPS
from ..deliveries.opens import CAMPAIGN_PAGE_MAX_LENGTH
from ..storable import DB_INT_MAX
from .v1_campaigns import MAX_RATE, NAME_MAX, RUNS_LISTED, VALUE_MAX
from .v1_openapi import NO_NUL, _error, _text
from .validation import TEMPLATE_ID_RE

CAMPAIGN = {"$ref": "#/components/schemas/Campaign"}
CLOCK = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
}
AUTH_ERRORS = {
    # Any request whose URL holds a NUL or a number too large to store (dashboard/storable.py).
    "400": _error("The request holds a NUL character or a number too large to store"),
    "401": _error("Missing, unknown or revoked API key"),
    "403": _error("The key lacks the campaigns scope"),
}


def _answer(description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": CAMPAIGN}}}}


def _move(summary: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "parameters": [ID_PARAMETER],
            "responses": {
                **_answer("The campaign in its new state"),
                **AUTH_ERRORS,
                "404": _error("No campaign has this id"),
                "409": _error(
                    "invalid_state: the state machine forbids this move from the campaign's state (the "
                    "message says why); or the template or segment cannot be used now; oa_off: the "
                    "campaign uses the Official Account and its channel is off; oa_template_<why>: its "
                    "Official Account template cannot be used now (unknown, removed, changed)"
                ),
                "422": _error("A keyword value of the campaign breaks its rule (the template changed)"),
            },
        }
    }


def campaign_paths() -> dict[str, Any]:
    return {
        "/campaigns": {
            "post": {
                "summary": "Compose a campaign (state draft)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CampaignRequest"}}
                    },
                },
                "responses": {
                    **_answer("The new campaign, in state draft", "201"),
                    **AUTH_ERRORS,
                    "400": _error("The body is not JSON, or holds a NUL or a number too large to store"),
                    "404": _error(
                        "No registered template, Official Account template (unknown_oa_template) or "
                        "segment has this id"
                    ),
                    "409": _error("oa_off: the channel uses the Official Account, which is not configured"),
                    "413": _error("The body is larger than 64 KiB"),
                    "422": _error(
                        "A field is malformed, a keyword value can never pass its rule, or the schedule's "
                        "cron expression is not one cron reads, never occurs or occurs more than once an "
                        "hour (field names it, e.g. schedule.cron)"
                    ),
                },
            }
        },
        "/campaigns/{id}": {
            "get": {
                "summary": "A campaign's state and counts",
                "parameters": [ID_PARAMETER],
                "responses": {
                    **_answer("The campaign"),
                    **AUTH_ERRORS,
                    "404": _error("No campaign has this id"),
                },
            }
        },
        "/campaigns/{id}/runs": {
            "get": {
                "summary": "A recurring campaign's runs",
                "description": (
                    f"One run per occurrence, newest first (the last {RUNS_LISTED}): a campaign of its own "
                    "(parent_id, occurrence_at) with its recipients and counts, or state missed when it "
                    "never ran (pause_reason says why). Empty for a campaign without a schedule."
                ),
                "parameters": [ID_PARAMETER],
                "responses": {
                    "200": {
                        "description": "The runs",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["runs"],
                                    "properties": {"runs": {"type": "array", "items": CAMPAIGN}},
                                }
                            }
                        },
                    },
                    **AUTH_ERRORS,
                    "404": _error("No campaign has this id"),
                },
            }
        },
        "/campaigns/{id}/launch": _move(
            "Launch a draft",
            "Recipients are fixed now (state running), or when scheduled_at comes (state scheduled). "
            "Launching twice starts one run: the second is 409 invalid_state. A recurring campaign "
            "becomes scheduled: each occurrence from now on is a run of its own.",
        ),
        "/campaigns/{id}/pause": _move(
            "Pause a running campaign",
            "What is in flight finishes. A recurring campaign makes no runs while paused.",
        ),
        "/campaigns/{id}/resume": _move(
            "Resume a paused campaign",
            "Sending goes on where it stopped. A recurring campaign makes runs again from its next "
            "occurrence (those that fell in the pause are not made).",
        ),
        "/campaigns/{id}/cancel": _move(
            "Cancel a campaign",
            "Recipients not yet sent to are skipped (reason cancelled); what is in flight finishes. "
            "A recurring campaign makes no more runs (a run under way goes on).",
        ),
    }


def _schedule_schema() -> dict[str, Any]:
    """What ``campaigns.recurring.parse_schedule`` takes: one shape per ``repeat``."""

    def shape(repeat: str, required: list[str], **properties: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["repeat", *required],
            "properties": {"repeat": {"type": "string", "const": repeat}, **properties},
        }

    return {
        "description": (
            "Makes the campaign recurring: each occurrence from its launch on is a run with its own "
            "recipients (the segment then), counts and report. Times and cron fields are read on the wall "
            "clock of the operator's TIMEZONE (after a change of offset, 09:00 stays 09:00; a time the "
            "clock skips runs when it resumes). Occurrences at least an hour apart. An occurrence found "
            "due later than RECURRING_MAX_LATENESS_MINUTES (no worker was up) is recorded as missed. "
            "Not with scheduled_at."
        ),
        "oneOf": [
            shape("daily", ["time"], time=CLOCK),
            shape(
                "weekly",
                ["time", "weekdays"],
                time=CLOCK,
                weekdays={
                    "type": "array",
                    "description": "1 = Monday ... 7 = Sunday",
                    "minItems": 1,
                    "maxItems": 7,
                    "uniqueItems": True,
                    "items": {"type": "integer", "minimum": 1, "maximum": 7},
                },
            ),
            shape(
                "monthly",
                ["time", "day"],
                time=CLOCK,
                day={
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 31,
                    "description": "A month without this day has no occurrence",
                },
            ),
            shape(
                "cron",
                ["cron"],
                cron=_text(
                    CRON_MAX,
                    "Five cron fields: minute hour day-of-month month day-of-week, e.g. 30 8 * * 1-5",
                ),
            ),
        ],
    }


def _data_schema(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "required": ["value"],
            "properties": {
                "value": {"type": "string", "maxLength": VALUE_MAX, "pattern": NO_NUL},
                "fallback": {"type": "string", "maxLength": VALUE_MAX, "pattern": NO_NUL},
            },
        },
    }


def _reminder_schema() -> dict[str, Any]:
    """What ``campaigns.reminders.parse_reminder`` takes."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["attribute", "time", "steps"],
        "description": (
            "Makes the campaign a date reminder: every day at time (the operator's TIMEZONE) a run sends "
            "each step to the users whose date attribute is offset_days after that day's date, i.e. the "
            "date is the send day minus offset_days (-7: seven days before the date; 0: on the day), "
            "within segment_id when given. Each user gets each step at most once per value of the date: "
            "a date moved by a renewal makes the steps due again. Not with schedule or scheduled_at; data "
            "is ignored (each step has its own). An attribute that is not a declared date or datetime: "
            "404 unknown_attribute; two steps with the same offset_days: 422 naming "
            "reminder.steps[i].offset_days."
        ),
        "properties": {
            "attribute": _text(40, "A declared user attribute of type date or datetime"),
            "time": {**CLOCK, "description": "The local send time, HH:MM"},
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_STEPS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["offset_days"],
                    "properties": {
                        "offset_days": {
                            "type": "integer",
                            "minimum": -MAX_OFFSET_DAYS,
                            "maximum": MAX_OFFSET_DAYS,
                            "description": "Days from the date to the send: -7 sends seven days before",
                        },
                        "data": _data_schema(
                            "The step's values, as data; {{user.attributes.<key>|date}} writes a date or "
                            "datetime attribute as a date/time keyword takes it (2026-12-31, 2026-12-31 09:30)"
                        ),
                        "oa_data": _data_schema(
                            "The step's Official Account values, as oa_data (on a channel that uses the "
                            "Official Account)"
                        ),
                    },
                },
            },
        },
    }


def campaign_schemas() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    moment = {"type": ["string", "null"], "format": "date-time"}
    return {
        "CampaignRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "description": (
                "segment_id is required unless reminder is given; template_id unless channel is "
                "oa_template; oa_template_id when channel is oa_template or mp_subscribe_or_oa"
            ),
            "allOf": [
                {"anyOf": [{"required": ["segment_id"]}, {"required": ["reminder"]}]},
                {
                    "anyOf": [
                        {
                            "required": ["template_id"],
                            # The Official Account's fields are refused (422) on the subscribe channel.
                            "properties": {
                                "channel": {"const": "mp_subscribe"},
                                "oa_template_id": False,
                                "oa_data": False,
                            },
                        },
                        {
                            "required": ["channel", "oa_template_id"],
                            "properties": {"channel": {"const": "oa_template"}},
                            "not": {"required": ["template_id"]},
                        },
                        {
                            "required": ["channel", "template_id", "oa_template_id"],
                            "properties": {"channel": {"const": "mp_subscribe_or_oa"}},
                        },
                    ]
                },
            ],
            "properties": {
                "name": _text(NAME_MAX),
                "template_id": {
                    "type": "string",
                    "pattern": TEMPLATE_ID_RE.pattern,
                    "description": "The subscribe message's template (not on the oa_template channel)",
                },
                "channel": {
                    "type": "string",
                    "enum": ["mp_subscribe", "oa_template", "mp_subscribe_or_oa"],
                    "default": "mp_subscribe",
                    "description": (
                        "mp_subscribe: the subscribe message, spending a credit; oa_template: the Official "
                        "Account's template message, to users who follow it (others are skipped "
                        "not_following); mp_subscribe_or_oa: the subscribe message when the user holds a "
                        "credit, else the Official Account when they follow, else skipped no_channel. A "
                        "channel that uses the Official Account needs it configured (409 oa_off)"
                    ),
                },
                "oa_template_id": {
                    "type": "string",
                    "pattern": TEMPLATE_ID_RE.pattern,
                    "description": (
                        "The Official Account template (Templates → Official Account); its card opens page "
                        "in the mini-program. Unknown: 404 unknown_oa_template"
                    ),
                },
                "oa_data": _data_schema(
                    "The Official Account template's values, in data's form (fixed text or user variables "
                    "with a fallback), judged by the Official Account's rules (422 naming oa_data.<key>). "
                    "A key left out is empty (only first, remark and const may be)"
                ),
                "segment_id": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
                "data": {
                    "type": "object",
                    "description": (
                        "Per keyword: fixed text, or text with user variables ({{user.nickname}}, "
                        "{{user.openid}}, {{user.unionid}}, {{user.attributes.<key>}}) and a fallback sent "
                        "when one is empty. A keyword left out takes the template's default."
                    ),
                    "propertyNames": {"pattern": NO_NUL},
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["value"],
                        "properties": {
                            "value": {"type": "string", "maxLength": VALUE_MAX, "pattern": NO_NUL},
                            "fallback": {"type": "string", "maxLength": VALUE_MAX, "pattern": NO_NUL},
                        },
                    },
                },
                "page": _text(CAMPAIGN_PAGE_MAX_LENGTH),
                "miniprogram_state": {"type": "string", "enum": ["developer", "trial", "formal"]},
                "lang": {"type": "string", "enum": ["zh_CN", "en_US", "zh_HK", "zh_TW"]},
                "scheduled_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "ISO 8601 with its offset; launching before it schedules the campaign",
                },
                "rate_per_second": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_RATE,
                    "description": "At most this many sends a second for this campaign (the global limit still applies)",
                },
                "quiet_hours": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "Local times (the operator's TIMEZONE) between which nothing is sent; default 21:00-08:00; the same start and end: none",
                    "properties": {"start": CLOCK, "end": CLOCK},
                },
                "schedule": _schedule_schema(),
                "reminder": _reminder_schema(),
            },
        },
        "Campaign": {
            "type": "object",
            "required": ["id", "state", "pause_reason", "counts"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "state": {
                    "type": "string",
                    "enum": ["draft", "scheduled", "running", "paused", "completed", "cancelled", "missed"],
                    "description": (
                        "A recurring campaign is scheduled while it makes runs; a run that never ran is missed"
                    ),
                },
                "pause_reason": {"type": ["string", "null"]},
                "template_id": {
                    "type": ["string", "null"],
                    "description": "null on the oa_template channel",
                },
                "data": {"type": "object"},
                "channel": {"type": "string", "enum": ["mp_subscribe", "oa_template", "mp_subscribe_or_oa"]},
                "oa_template_id": {"type": ["string", "null"]},
                "oa_data": {"type": ["object", "null"]},
                "segment_id": {"type": ["integer", "null"]},
                "scheduled_at": {"type": ["string", "null"]},
                "started_at": {"type": ["string", "null"]},
                "finished_at": {"type": ["string", "null"]},
                "rate_per_second": {"type": ["integer", "null"]},
                "schedule": {
                    "type": ["object", "null"],
                    "description": "The recurring campaign's schedule as given (null: one-off or a run)",
                },
                "timezone": {
                    "type": "string",
                    "description": "The zone its schedule and quiet hours are read in",
                },
                "next_occurrence_at": {
                    **moment,
                    "description": "A scheduled recurring campaign's next occurrence (UTC)",
                },
                "parent_id": {
                    "type": ["integer", "null"],
                    "description": "For a run: the recurring campaign it belongs to",
                },
                "occurrence_at": {**moment, "description": "For a run: the occurrence it is for (UTC)"},
                "reminder": {
                    "type": ["object", "null"],
                    "description": "A date reminder's definition (on it and its runs); null otherwise",
                },
                "counts": {
                    "type": "object",
                    "description": (
                        "recipients = pending + sent + failed + skipped + unknown; opens on top; "
                        "sent_by_channel splits sent by the channel each message went out on"
                    ),
                    "required": [
                        "recipients",
                        "pending",
                        "sent",
                        "failed",
                        "skipped",
                        "unknown",
                        "opens",
                        "sent_by_channel",
                    ],
                    "properties": {
                        **{
                            name: count
                            for name in (
                                "recipients",
                                "pending",
                                "sent",
                                "failed",
                                "skipped",
                                "unknown",
                                "opens",
                            )
                        },
                        "sent_by_channel": {
                            "type": "object",
                            "required": ["mp_subscribe", "oa_template"],
                            "properties": {"mp_subscribe": count, "oa_template": count},
                        },
                    },
                },
            },
        },
    }

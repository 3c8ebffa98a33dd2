from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from ..dispatch.frequency_cap import MAX_DAYS, MAX_MESSAGES
from ..dispatch.limits import MAX_CONCURRENCY, MAX_RATE


class SendingLimitsForm(FlaskForm):
    rate_per_second = IntegerField(
        _l("Messages per second, all workers together"),
        validators=[InputRequired(), NumberRange(1, MAX_RATE)],
    )
    concurrency = IntegerField(
        _l("Requests in flight per worker"), validators=[InputRequired(), NumberRange(1, MAX_CONCURRENCY)]
    )


class FrequencyCapForm(FlaskForm):
    frequency_cap_messages = IntegerField(
        _l("Campaign messages per user"), validators=[InputRequired(), NumberRange(0, MAX_MESSAGES)]
    )
    frequency_cap_days = IntegerField(
        _l("Window in days"), validators=[InputRequired(), NumberRange(1, MAX_DAYS)]
    )

"""Chinese strings for issue 13's ledger rows: a released reservation is one row (delta 0)."""

ZH = {
    "credit reserved for this delivery and given back": "为这次发送预留的次数已退回",
}

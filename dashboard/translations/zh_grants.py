"""Chinese strings for the grant ledger's conversions when a template's kind changes."""

ZH = {
    "Catalog": "模板目录",
    "Template kind changed": "模板类型已变更",
}

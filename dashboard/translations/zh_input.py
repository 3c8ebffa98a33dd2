"""Chinese strings for refused input (characters or numbers no database column can hold)."""

ZH = {
    "What you sent contains a character that cannot be stored (NUL) or a number too large to store. Remove it and try again.": "提交的内容包含无法保存的字符（NUL）或过大的数字。请删除后重试。",
}

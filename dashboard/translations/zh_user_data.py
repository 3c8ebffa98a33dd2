"""Chinese strings for user data from the back end: declared user attributes and the users API scope."""

ZH = {
    "users: write users' attributes and tags, declare attribute keys": "users：写入用户的属性和标签，声明属性键",
    "Text": "文本",
    "Number": "数字",
    "Yes / no": "是 / 否",
    "Date": "日期",
    "Date and time": "日期时间",
    "User attribute declared": "已声明用户属性",
    "User attribute changed": "已修改用户属性",
    "User attribute #%(id)s": "用户属性 #%(id)s",
    "No line breaks or tabs.": "不能包含换行或制表符。",
    "A letter, digit or _ first, then letters, digits, _ . or - (at most 40).": (
        "以字母、数字或 _ 开头，其后为字母、数字、_ . 或 -（最多 40 个字符）。"
    ),
    "%(key)s is declared already: change it in the list.": "%(key)s 已声明：请在列表中修改。",
    "Attribute %(key)s declared.": "已声明属性 %(key)s。",
    "Attribute %(key)s saved.": "已保存属性 %(key)s。",
    "User attributes": "用户属性",
    "Attribute %(key)s": "属性 %(key)s",
    "Changing the type does not rewrite values already stored; values written from now on must be of the new type.": (
        "修改类型不会改写已存储的值；此后写入的值必须符合新类型。"
    ),
    "The attributes your back end may write with PUT /api/v1/users/{openid} and POST /api/v1/users/batch "
    "(API-key scope users). A key that is not declared here, or a value of another type, is refused with the "
    "key named, so a typo never becomes an empty segment.": (
        "你的后端可通过 PUT /api/v1/users/{openid} 和 POST /api/v1/users/batch（API 密钥权限 users）写入这些属性。"
        "未在此声明的键或类型不符的值会被拒绝，并指明是哪个键，拼写错误不会变成一个空的分群。"
    ),
    "No attribute declared yet.": "尚未声明任何属性。",
    "Dates are YYYY-MM-DD. A date and time must carry its offset (2026-12-31T23:59:59+08:00) and is kept in "
    "the console's time zone, so date conditions in segments count the operator's days. Attributes imported "
    "from CSV, or stored before they were declared, stay as they are.": (
        "日期格式为 YYYY-MM-DD。日期时间必须带时区偏移（2026-12-31T23:59:59+08:00），并按控制台时区保存，"
        "因此分群中的日期条件按操作员所在时区的日期计算。通过 CSV 导入的属性，以及声明之前已存储的属性，保持不变。"
    ),
    "Declare an attribute": "声明属性",
    "Membership expires": "会员到期日",
    "Declare": "声明",
    "Attribute key": "属性键",
}

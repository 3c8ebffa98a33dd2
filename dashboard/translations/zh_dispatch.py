"""Chinese strings for API keys, deliveries and sending."""

ZH = {
    "API keys": "API 密钥",
    "Other back ends send transactional messages with POST /api/v1/messages and a key: Authorization: Bearer <key>.": "其他后端使用 POST /api/v1/messages 和密钥发送单条消息：Authorization: Bearer <密钥>。",
    "Key %(name)s created": "已创建密钥 %(name)s",
    "Copy it now: it is shown only this once and cannot be recovered.": "请立即复制：它只显示这一次，之后无法找回。",
    "Key": "密钥",
    "Scopes": "权限范围",
    "Created": "创建时间",
    "Last used": "最近使用",
    "Revoke": "吊销",
    "revoked %(time)s": "已于 %(time)s 吊销",
    "No keys yet.": "还没有密钥。",
    "Create a key": "创建密钥",
    "Create": "创建",
    "send: send messages and read them": "send：发送消息并读取",
    "read: read messages only": "read：只读消息",
    "A key needs a name.": "密钥需要一个名称。",
    "Choose at least one scope.": "请至少选择一个权限范围。",
    "A key named %(name)s already exists.": "名为 %(name)s 的密钥已存在。",
    "Key %(name)s revoked; requests with it now get 401.": "密钥 %(name)s 已吊销；使用它的请求将得到 401。",
}

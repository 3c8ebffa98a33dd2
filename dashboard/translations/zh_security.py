"""Chinese strings for logging in and API key scopes."""

ZH = {
    "Wrong email or password. After %(count)d failures in a row an account is locked for %(minutes)d minutes, and even the right password is refused until then.": "邮箱或密码错误。连续失败 %(count)d 次后账号将锁定 %(minutes)d 分钟，期间即使密码正确也无法登录。",
    "send: send messages and read the ones this key sent": "send：发送消息，并读取本密钥发送的消息",
    "read_all: read every message sent through the API, whichever key sent it": "read_all：读取经 API 发送的所有消息，无论由哪个密钥发送",
}

"""Chinese for the words that replace raw codes: settings values, the token's source, audit details."""

ZH = {
    # where the access token came from (settings and home connection check)
    "this process's memory": "本进程内存",
    "the database": "数据库",
    "Redis": "Redis",
    "WeChat (fetched now)": "微信（刚刚获取）",
    # settings values
    "yes": "是",
    "no": "否",
    "set (hidden)": "已设置（已隐藏）",
    "not set": "未设置",
    # audit log details
    "Failed attempts": "失败次数",
    "Locked until": "锁定至",
    "After a reset by an admin": "管理员重置后",
    "Password generated": "系统生成密码",
    "Language": "语言",
    "Note": "备注",
    "Resent as delivery": "重新发送为投递",
    "Copied from campaign": "复制自活动",
    "Rows": "行数",
    "Messages per second": "每秒消息数",
    "wrong password": "密码错误",
    "account disabled": "账号已停用",
    "account locked": "账号已锁定",
    "no such operator": "无此操作员",
}

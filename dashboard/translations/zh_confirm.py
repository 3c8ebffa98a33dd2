"""Chinese strings of the confirmations before damage (issue 12): deleting a template, revoking an API key,
force-resending a delivery; and the test send's busy state."""

ZH = {
    # test send in flight
    "Sending; waiting for WeChat's answer…": "正在发送，等待微信的答复…",
    # deleting a template
    "I understand, delete this template": "我已了解，删除此模板",
    "Tick the box to confirm the deletion; nothing was deleted.": "请勾选确认框后再删除；没有删除任何内容。",
    "Delete from the catalog…": "从模板库中删除…",
    "The next page shows what refers to this template and asks you to confirm.": "下一页会列出引用此模板的内容，并请您确认。",
    "Only an admin can delete a template. To stop sending it, disable it in its settings.": "只有管理员可以删除模板。如需停止使用，请在设置中停用它。",
    "Delete the template “%(title)s”?": "删除模板“%(title)s”？",
    "What deleting changes": "删除后会发生什么",
    "“%(title)s” leaves the catalog: it can no longer be previewed, test-sent, used by a campaign or sent through the API.": "“%(title)s”将从模板库中移除：不能再预览、测试发送、用于群发活动或通过 API 发送。",
    "Back ends that send with the business scene %(scene)s are refused from then on.": "此后，使用业务场景 %(scene)s 发送的后端请求会被拒绝。",
    "%(count)d campaigns not finished use it and cannot be launched or resumed without it:": "%(count)d 个未结束的群发活动使用它，删除后无法启动或继续：",
    "%(count)d users hold a live grant of it; the grants stay in the ledger, unused while the template is not in the catalog.": "%(count)d 个用户持有它的有效订阅授权；授权仍保留在授权账本中，但在模板重新登记前不会被使用。",
    "%(count)d deliveries were recorded with it; they stay, with its template ID, so its send history stays readable.": "已记录 %(count)d 条使用它的投递；它们连同模板 ID 一起保留，发送历史仍可查看。",
    "A sync from WeChat registers it again, with that history, unless it is deleted in WeChat too.": "除非同时在微信中删除，否则下次从微信同步时会重新登记它，历史记录随之恢复关联。",
    "Cannot be undone: the template is gone from the mini program's account, and users' grants of it are lost at WeChat.": "无法撤销：模板将从小程序帐号中移除，用户在微信侧的订阅授权随之失效。",
    "I understand: delete “%(title)s” from the catalog.": "我已了解：从模板库中删除“%(title)s”。",
    "Delete the template": "删除模板",
    "Keep it": "保留",
    # revoking an API key
    "I understand, revoke this key": "我已了解，吊销此密钥",
    "Revoke…": "吊销…",
    "Key %(name)s is revoked already.": "密钥 %(name)s 已被吊销。",
    "Tick the box to confirm; the key was not revoked.": "请勾选确认框；密钥没有被吊销。",
    "Revoke the key %(name)s": "吊销密钥 %(name)s",
    "Revoke the key “%(name)s”?": "吊销密钥“%(name)s”？",
    "never": "从未",
    "From the moment you confirm, every request with this key is refused with 401: the back ends that use it can no longer send messages or read them.": "确认后，使用它的每个请求都会被拒绝（401）：使用此密钥的后端将无法再发送或读取消息。",
    "A revoked key cannot be turned back on: those back ends need a new key.": "吊销的密钥无法恢复：这些后端需要换用新密钥。",
    "Messages already sent with it keep their history.": "已用它发送的消息保留其历史记录。",
    "I understand: revoke “%(name)s” now.": "我已了解：立即吊销“%(name)s”。",
    "Revoke the key": "吊销密钥",
    # force-resending a delivery
    "Resending makes a new delivery of template %(template)s to user %(openid)s and spends one more of that user's credits of it.": "重发会为用户 %(openid)s 新建一条模板 %(template)s 的投递，并再扣除该用户的一次可发送次数。",
    "I understand: user %(openid)s may receive delivery #%(id)d twice.": "我已了解：用户 %(openid)s 可能会收到两次投递 #%(id)d。",
}

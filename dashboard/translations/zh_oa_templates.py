"""Chinese strings of the Official Account's templates in the catalog (issue 15 point 3): the
Official Account tab of Templates, the card preview in the OA's look, and the test send."""

ZH = {
    # Tabs and list
    "Template channels": "模板渠道",
    "Mini program": "小程序",
    "Official Account templates": "公众号模板",
    "The Official Account's template messages (模板消息): no subscription credit is needed, but the user must follow the account. Synced from WeChat with flask sync-templates or the button above.": "公众号模板消息：无需订阅次数，但用户必须关注公众号。通过 flask sync-templates 或上方按钮从微信同步。",
    "Industry": "行业",
    "No Official Account template yet: sync from WeChat.": "还没有公众号模板：请从微信同步。",
    "No Official Account template.": "没有公众号模板。",
    "The Official Account channel is off: nothing to sync.": "公众号渠道未开启：没有可同步的内容。",
    "Sync failed: WeChat answered errcode %(errcode)s.": "同步失败：微信返回 errcode %(errcode)s。",
    "Synced: %(new)d new, %(changed)d changed, %(removed)d removed, %(unchanged)d unchanged.": "已同步：新增 %(new)d 个，变更 %(changed)d 个，移除 %(removed)d 个，未变 %(unchanged)d 个。",
    # Detail
    "industry": "行业",
    "The template is kept here with its history; a send would fail with errcode 40037.": "模板及其历史记录仍保留在这里；发送会失败（errcode 40037）。",
    "Rule": "规则",
    "free text, may be left empty": "任意文本，可留空",
    "free text": "任意文本",
    "an approved value, or empty": "审核通过的取值，或留空",
    "currency amount, at most 12 digits": "金额，最多 12 位数字",
    "The Official Account's rules differ from the mini-program's: amounts take up to 12 digits (10 in the mini program), constant keywords take only a value approved with the template, and “phrase” is not in its table.": "公众号的取值规则与小程序不同：金额最多 12 位数字（小程序为 10 位），常量类关键词只能填写随模板审核通过的取值，且公众号的规则表中没有“汉字”（phrase）类型。",
    # Card preview
    "Your Official Account": "你的公众号",
    (
        "%(num)d value breaks the Official Account's rules: the send would fail with 47003.",
        "%(num)d values break the Official Account's rules: the send would fail with 47003.",
    ): "%(num)d 个取值不符合公众号的规则：发送会失败（47003）。",
    "Every value fits the Official Account's rules.": "所有取值都符合公众号的规则。",
    # Test send
    "Send a test to (a follower's openid)": "测试发送给（粉丝的 openid）",
    "Only followers of the Official Account can receive its template messages.": "只有关注公众号的用户才能收到公众号模板消息。",
    "Mini-program page opened by a tap": "点击后打开的小程序页面",
    "Recorded in the audit log (Official Account test send).": "已记入审计日志（公众号测试发送）。",
    "Not sent: this openid is not a follower of the Official Account as far as Tongzhi knows. Only followers can receive its template messages; pick one from the list (or sync the followers).": "未发送：据通知所知，这个 openid 没有关注公众号。只有粉丝才能收到公众号模板消息；请从列表中选择（或先同步粉丝）。",
    "The Official Account channel is off: nothing can be sent.": "公众号渠道未开启：无法发送。",
    "Choose the follower who receives the test.": "请选择接收测试消息的粉丝。",
    "The page is at most 512 characters, without spaces.": "页面路径最多 512 个字符，且不能有空格。",
    "WeChat's answer was lost: the message may have been delivered. A resend within 10 minutes with the same client_msg_id would not be delivered twice.": "微信的应答丢失：消息可能已送达。10 分钟内用相同的 client_msg_id 重发不会重复送达。",
    "This person does not follow the Official Account (any more), so WeChat did not deliver it.": "此用户没有关注（或已取消关注）公众号，微信未送达这条消息。",
    "WeChat does not know this openid for the Official Account.": "微信不认识这个公众号 openid。",
    "WeChat does not know this template: sync the templates.": "微信找不到这个模板：请同步模板。",
    "WeChat refused a value: it breaks the template's rules.": "微信拒绝了某个取值：它不符合模板的规则。",
    "The mini-program is not linked to the Official Account.": "小程序未与公众号关联。",
    "The page is not in the published mini-program.": "已发布的小程序中没有这个页面。",
    # Audit log
    "Official Account template #%(id)s": "公众号模板 #%(id)s",
    "Official Account templates synced from WeChat": "已从微信同步公众号模板",
    "Official Account template added": "新增公众号模板",
    "Official Account template changed in WeChat": "公众号模板在微信中被修改",
    "Official Account template removed in WeChat": "公众号模板在微信中被删除",
    "Official Account template change reviewed": "已确认公众号模板的变更",
    "Official Account template test send": "公众号模板测试发送",
}

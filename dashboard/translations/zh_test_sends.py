"""Chinese strings for test sends: what happened to the message, and why one was not sent."""

ZH = {
    "Not sent yet: WeChat asked to try again later. A worker will send it again; its credit went back meanwhile.": "暂未发送：微信要求稍后再试。发送进程会再次发送，期间可发送次数已退回。",
    "WeChat's answer was lost: the message may have been delivered. Its credit counts as spent and it is not sent again automatically.": "微信的应答丢失：消息可能已送达。它的可发送次数按已使用计，不会自动重发。",
    "Not sent: Tongzhi's grant ledger has no credit of this template for this user, so WeChat was not called. The user must accept the template in the mini program first.": "未发送：授权账本中没有该用户对此模板的可发送次数，所以没有调用微信。用户需先在小程序中同意订阅此模板。",
    "Not sent: this user's remaining credits are kept for transactional sends (credit budget), so WeChat was not called.": "未发送：该用户剩余的可发送次数保留给单条发送（保留额度），所以没有调用微信。",
    "Not sent (%(reason)s): WeChat was not called.": "未发送（%(reason)s）：没有调用微信。",
}

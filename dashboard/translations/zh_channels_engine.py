"""Chinese strings of issue 15's engine part: the channel's skip reasons and the Official Account test
send recorded as a delivery."""

ZH = {
    # skip reasons (dashboard/labels.py)
    "No credit, and does not follow the Official Account": "没有可发送次数，也未关注公众号",
    "No Official Account template given": "未指定公众号模板",
    # Templates → Official Account → test send
    "Not sent yet: WeChat could not take it now. A worker will try again.": "尚未发送：微信暂时无法处理，稍后将自动重试。",
    "Not sent: the Official Account cannot reach this person now.": "未发送：公众号目前无法触达此人。",
}

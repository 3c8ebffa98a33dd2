"""Chinese strings for unknown deliveries settled by WeChat's delivery event."""

ZH = {
    "confirmed by WeChat's delivery event": "已由微信的下发结果事件确认",
    "Outcome confirmed by WeChat's delivery event (subscribe_msg_sent_event): the answer to the send itself was lost.": "结果已由微信的下发结果事件（subscribe_msg_sent_event）确认：发送请求本身的应答已丢失。",
}

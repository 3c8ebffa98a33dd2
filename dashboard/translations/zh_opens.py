"""Chinese strings for opens of campaign messages (the tz tracking parameter)."""

ZH = {
    "Opened": "打开",
    "opened at %(time)s": "打开于 %(time)s",
    "not opened (or the mini-program did not report it)": "未打开（或小程序未上报）",
}

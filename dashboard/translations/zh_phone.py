"""Chinese strings for the phone menu (templates/base.html)."""

ZH = {
    "Menu": "菜单",
}

"""/wechat/push: WeChat's subscribe-event pushes (signature, secure mode, XML/JSON, de-dup, ledger)."""

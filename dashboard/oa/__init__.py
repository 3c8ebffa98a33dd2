"""The Official Account (服务号) channel: followers, the OA's push endpoint, the channels page.

The OA's API client is ``dashboard.wechat.oa``; whether the channel is on is
``dashboard.config.oa_configured``.
"""

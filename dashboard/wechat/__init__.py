"""Everything Tongzhi says to WeChat goes through this package."""

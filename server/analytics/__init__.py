"""Analytics: the ROPO funnel, footfall and dwell, guidance delivered vs acted upon."""

"""Storefront-facing code: the /widget/v1 JSON API, shopper authentication, the embeddable
<lojal-rewards> script and the theme/plugin snippets (built under the widget issue).

The Shopify app proxy signature check it will use lives in integrations/shopify/app_proxy.py.
"""

"""Vendor payloads for the normaliser tests, built from each vendor's own documents.

Shopper identifiers are obviously fake (``test-user-0001``); product data is the
vendors' example data, kept verbatim where the source gives it.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]

# -------------------------------------------------------------------- Segment
# Properties: segmentio/segment-docs src/connections/spec/ecommerce/v2.md,
# "Product Viewed" example (note the lower-case ``currency: 'usd'``).
SEGMENT_PRODUCT_VIEWED_PROPERTIES: Json = {
    "product_id": "507f1f77bcf86cd799439011",
    "sku": "G-32",
    "category": "Games",
    "name": "Monopoly: 3rd Edition",
    "brand": "Hasbro",
    "variant": "200 pieces",
    "price": 18.99,
    "quantity": 1,
    "coupon": "MAYDEALS",
    "currency": "usd",
    "position": 3,
    "value": 18.99,
    "url": "https://www.example.com/product/path",
    "image_url": "https://www.example.com/product/path.jpg",
}

# Envelope: src/connections/spec/track.md and common.md (type, event, userId,
# anonymousId, messageId, timestamp, originalTimestamp, sentAt, context).
SEGMENT_PRODUCT_VIEWED: Json = {
    "type": "track",
    "event": "Product Viewed",
    "userId": "test-user-0001",
    "anonymousId": "test-anon-0001",
    "messageId": "ajs-test-message-0001",
    "timestamp": "2024-05-01T10:15:00.000Z",
    "originalTimestamp": "2024-05-01T10:14:59.000Z",
    "sentAt": "2024-05-01T10:15:01.000Z",
    "context": {"library": {"name": "analytics.js", "version": "2.11.1"}},
    "properties": SEGMENT_PRODUCT_VIEWED_PROPERTIES,
}

# v2 spec "Order Completed" example.
SEGMENT_ORDER_COMPLETED: Json = {
    "type": "track",
    "event": "Order Completed",
    "anonymousId": "test-anon-0002",
    "messageId": "ajs-test-message-0002",
    "timestamp": "2024-05-02T18:00:00Z",
    "properties": {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "affiliation": "Google Store",
        "total": 27.50,
        "subtotal": 22.50,
        "revenue": 25.00,
        "shipping": 3,
        "tax": 2,
        "discount": 2.5,
        "coupon": "hasbros",
        "currency": "USD",
        "products": [
            {
                "product_id": "507f1f77bcf86cd799439011",
                "sku": "45790-32",
                "name": "Monopoly: 3rd Edition",
                "price": 19,
                "quantity": 1,
                "category": "Games",
                "url": "https://www.example.com/product/path",
                "image_url": "https://www.example.com/product/path.jpg",
            },
            {
                "product_id": "505bd76785ebb509fc183733",
                "sku": "46493-32",
                "name": "Uno Card Game",
                "price": 3,
                "quantity": 2,
                "category": "Games",
            },
        ],
    },
}

SEGMENT_PAGE_VIEWED: Json = {
    "type": "track",
    "event": "Page Viewed",
    "anonymousId": "test-anon-0001",
    "messageId": "ajs-test-message-0003",
    "properties": {"path": "/"},
}

# ----------------------------------------------------------------------- GA4
# developers.google.com/analytics/devguides/collection/ga4/reference/events,
# view_item example (the revision WIRE-FORMATS §7 captured).
GA4_VIEW_ITEM_PARAMS: Json = {
    "currency": "USD",
    "value": 7.77,
    "items": [
        {
            "item_id": "SKU_12345",
            "item_name": "Stan and Friends Tee",
            "affiliation": "Google Merchandise Store",
            "coupon": "SUMMER_FUN",
            "discount": 2.22,
            "index": 0,
            "item_brand": "Google",
            "item_category": "Apparel",
            "item_category2": "Adult",
            "item_category3": "Shirts",
            "item_category4": "Crew",
            "item_category5": "Short sleeve",
            "item_list_id": "related_products",
            "item_list_name": "Related Products",
            "item_variant": "green",
            "location_id": "ChIJIQBpAG2ahYAR_6128GcTUEo",
            "price": 9.99,
            "quantity": 1,
        }
    ],
}

# gtag("event", "view_item", {...}) as a JSON array.
GA4_GTAG_VIEW_ITEM: list[Any] = ["event", "view_item", GA4_VIEW_ITEM_PARAMS]

# A real store's GTM dataLayer push: price/quantity as strings, no currency.
GA4_DATALAYER_VIEW_ITEM: Json = {
    "event": "view_item",
    "ecommerce": {
        "value": "49.90",
        "items": [
            {
                "item_id": "TEE-BLK",
                "item_name": "Basic tee",
                "item_variant": "M / Black",
                "price": "49.90",
                "quantity": "1",
            }
        ],
    },
}

# The reference's purchase example.
GA4_PURCHASE_PARAMS: Json = {
    "transaction_id": "T_12345",
    "value": 25.42,
    "tax": 4.90,
    "shipping": 5.99,
    "currency": "USD",
    "coupon": "SUMMER_SALE",
    "items": [
        {
            "item_id": "SKU_12345",
            "item_name": "Stan and Friends Tee",
            "item_variant": "green",
            "price": 9.99,
            "quantity": 1,
        },
        {
            "item_id": "SKU_12346",
            "item_name": "Google Grey Women's Tee",
            "item_variant": "gray",
            "price": 20.99,
            "quantity": 1,
        },
    ],
}

# developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events:
# {client_id, user_id?, timestamp_micros?, events: [{name, params}]}.
GA4_MP_BODY: Json = {
    "client_id": "123456.7654321",
    "user_id": "test-user-0001",
    "timestamp_micros": 1714558500000000,  # 2024-05-01T10:15:00Z
    "events": [
        {"name": "view_item", "params": GA4_VIEW_ITEM_PARAMS},
        {"name": "page_view", "params": {"engagement_time_msec": 100}},
        {"name": "purchase", "params": GA4_PURCHASE_PARAMS},
    ],
}

# ------------------------------------------------------------------- Shopify
# Web Pixels product_viewed: event.data as captured on a test store
# (WIRE-FORMATS §7, juejin.cn/post/7298922883517120566); envelope fields from
# shopify.dev/docs/api/web-pixels-api/standard-events (id, name, clientId,
# timestamp, seq, type, context, data).
SHOPIFY_PRODUCT_VIEWED: Json = {
    "id": "sh-test-event-0001",
    "name": "product_viewed",
    "clientId": "test-shopify-client-0001",
    "timestamp": "2023-11-08T08:30:00.000Z",
    "seq": 3,
    "type": "standard",
    "context": {"document": {"title": "apple"}},
    "data": {
        "productVariant": {
            "price": {"amount": 0, "currencyCode": "CNY"},
            "product": {
                "title": "apple",
                "vendor": "My Store",
                "id": "8950526378201",
                "untranslatedTitle": "apple",
                "url": "/products/apple",
                "type": "apple",
            },
            "id": "45737128657113",
            "title": "单一产地",
            "untranslatedTitle": "单一产地",
        }
    },
}

# checkout_completed, built to the Checkout/CheckoutLineItem/ProductVariant/Order
# types of Shopify's pixels.d.ts. The e-mail is a reserved example.com address.
SHOPIFY_CHECKOUT_COMPLETED: Json = {
    "id": "sh-test-event-0002",
    "name": "checkout_completed",
    "clientId": "test-shopify-client-0001",
    "timestamp": "2023-11-08T09:00:00.000Z",
    "seq": 9,
    "type": "standard",
    "data": {
        "checkout": {
            "currencyCode": "EUR",
            "email": "Shopper@Example.com",
            "totalPrice": {"amount": 109.8, "currencyCode": "EUR"},
            "order": {"id": "5500000000001", "customer": {"id": "7700000000001"}},
            "lineItems": [
                {
                    "id": "li-1",
                    "quantity": 2,
                    "title": "Basic tee",
                    "variant": {
                        "id": "gid://shopify/ProductVariant/45737128650001",
                        "sku": "TEE-BLK-M",
                        "title": "M / Black",
                        "price": {"amount": 49.9, "currencyCode": "EUR"},
                        "product": {"id": "8950526370001", "title": "Basic tee"},
                    },
                },
                {
                    "id": "li-2",
                    "quantity": 1,
                    "title": "Tote bag",
                    "variant": {
                        "id": "45737128650002",
                        "sku": "TOTE",
                        "title": "Default Title",
                        "price": {"amount": 10},
                        "product": {"id": "8950526370002", "title": "Tote bag"},
                    },
                },
            ],
        }
    },
}

SHOPIFY_PAGE_VIEWED: Json = {
    "id": "sh-test-event-0003",
    "name": "page_viewed",
    "clientId": "test-shopify-client-0001",
    "timestamp": "2023-11-08T08:29:00.000Z",
    "type": "standard",
    "data": {},
}

# -------------------------------------------------------------------- native
NATIVE_PRODUCT_VIEWED: Json = {
    "type": "product_viewed",
    "event_id": "web-test-0001",
    "occurred_at": "2024-05-01T12:15:00+02:00",
    "shopper": {"user_id": "test-user-0001", "anonymous_id": "test-anon-0001"},
    "currency": "eur",
    "products": [{"sku": "TEE-BLK-M", "variant": "M / Black", "price": "49.90"}],
}

NATIVE_PURCHASE: Json = {
    "type": "purchase",
    "occurred_at": "2024-05-03T09:00:00Z",
    "shopper": {"email": "shopper@example.com"},
    "order_id": "WEB-TEST-1",
    "revenue": "49.90",
    "products": [{"sku": "TEE-BLK-M", "quantity": 1, "price": "49.90", "currency": "EUR"}],
}


def clone(payload: Any) -> Any:
    """A deep copy a test may mutate."""
    return copy.deepcopy(payload)

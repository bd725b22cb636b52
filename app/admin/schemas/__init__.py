"""marshmallow schemas of the admin API, one per resource; the OpenAPI document is built from them."""

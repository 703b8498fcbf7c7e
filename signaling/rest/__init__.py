"""The REST API (/v1) and the operational endpoints."""

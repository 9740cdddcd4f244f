"""The audit log (admin): writes, deletes and key changes, newest first."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint

from api import schemas
from api.context import database
from api.openapi import DATA_ROUTE_ERRORS, READ_ERRORS, TAGS, WRITE_SECURITY
from api.schemas import page_size
from api.serialize import iso
from db.access import audit_page

bp = APIBlueprint("audit", __name__, url_prefix="/api/v1", abp_tags=[TAGS["access"]], abp_responses=DATA_ROUTE_ERRORS)


@bp.get(
    "/audit",
    operation_id="listAudit",
    summary="The audit log (admin): who submitted, uploaded, deleted or changed keys, newest first",
    security=WRITE_SECURITY,
    responses={200: schemas.AuditPage, **READ_ERRORS},
)
def list_audit(query: schemas.AuditQuery) -> Response:
    entries, next_cursor = audit_page(database(), page_size(query.limit), query.cursor)
    items = [
        {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "target": e.target, "count": e.count}
        for e in entries
    ]
    return jsonify({"items": items, "next_cursor": next_cursor})

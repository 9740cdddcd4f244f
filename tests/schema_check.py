"""A small JSON Schema checker for the keywords the generated OpenAPI document uses (pydantic's
output through flask-openapi3), so tests can hold real responses against the document the
server serves without adding a dependency."""

from __future__ import annotations

from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, TYPES[name])


def problems(
    value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$", *, strict: bool = True
) -> list[str]:
    """Every way `value` breaks `schema` (empty if it conforms).

    `strict` also flags object keys the schema does not declare, so the document cannot
    silently fall behind the code; allOf members are checked non-strictly, their union strictly.
    """
    if "$ref" in schema:
        return problems(value, resolve(schema["$ref"], root), root, where, strict=strict)
    found: list[str] = []
    for sub in schema.get("allOf", []):
        found += problems(value, sub, root, where, strict=False)
    if "oneOf" in schema:
        matches = sum(not problems(value, sub, root, where) for sub in schema["oneOf"])
        if matches != 1:
            found.append(f"{where}: matches {matches} of oneOf")
    if "anyOf" in schema and not any(not problems(value, sub, root, where) for sub in schema["anyOf"]):
        found.append(f"{where}: {value!r} matches none of anyOf")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(is_type(value, name) for name in names):
            return [*found, f"{where}: {value!r} is not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} != {schema['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        found.append(f"{where}: longer than {schema['maxLength']}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items")
        for index, item in enumerate(value):
            found += problems(item, schema.get("items", {}), root, f"{where}[{index}]")
    if isinstance(value, dict):
        found += [f"{where}: missing {key}" for key in schema.get("required", []) if key not in value]
        declared = declared_keys(schema, root)
        if strict and declared and "additionalProperties" not in schema:
            found += [f"{where}: undocumented key {key!r}" for key in value if key not in declared]
        properties = schema.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                found += problems(key, schema["propertyNames"], root, f"{where} key {key!r}")
            if key in properties:
                found += problems(item, properties[key], root, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += problems(item, schema["additionalProperties"], root, f"{where}.{key}")
    return found


def declared_keys(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    """Property names a schema declares, through $ref and allOf (to catch undocumented response fields)."""
    if "$ref" in schema:
        return declared_keys(resolve(schema["$ref"], root), root)
    keys = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        keys |= declared_keys(sub, root)
    return keys

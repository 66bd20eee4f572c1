"""Metadata API deploys through REST (``metadata/deployRequest``), enough for the app's
one-click provisioning: custom fields on Contact and permission sets.

Request: ``multipart/form-data`` with a ``json`` part ``{"deployOptions": {...}}`` and a
``file`` part holding the zip (raw, or base64 with ``Content-Transfer-Encoding: base64``). The
zip is in Metadata API format: ``package.xml`` at the root (``singlePackage``) or in one
folder, ``objects/Contact.object`` (``<CustomObject>`` with ``<fields>``), and
``permissionsets/Name.permissionset`` (``<PermissionSet>`` with ``<label>`` and
``<fieldPermissions>``). Only components named in ``package.xml`` (types ``CustomObject``,
``CustomField``, ``PermissionSet``) are deployed; any other type is a component failure.

Answer: 201 ``{id, validatedDeployRequestId, deployOptions, deployResult, url}``, then
``GET .../deployRequest/{id}[?includeDetails=true]`` with ``deployResult`` ``{id, status
(Pending, InProgress, Succeeded, SucceededPartial, Failed), done, success, checkOnly,
numberComponentsDeployed, numberComponentErrors, numberComponentsTotal, errorMessage,
errorStatusCode, details: {componentSuccesses, componentFailures} ...}``. A deploy runs on the
first read ``deploy_delay`` seconds after it was made. ``rollbackOnError`` (default true): one
failure and nothing is applied; ``checkOnly``: validated, never applied.

XML is read with the standard library: Python's expat resolves no external entities and
refuses entity-expansion bombs (expat ≥ 2.4.1), and the zip is bounded in files and bytes, so
defusedxml (not a project dependency) would add nothing here.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, g, request
from flask.typing import ResponseReturnValue

from .errors import ApiError, not_found
from .schema import FieldDef
from .web import api_json

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator, Session

NS = "{http://soap.sforce.com/2006/04/metadata}"
MAX_FILES = 10000
MAX_UNZIPPED = 64 * 1024 * 1024  # far below Salesforce's 600 MB: this is a local test org

DEFAULT_OPTIONS: dict[str, Any] = {
    "allowMissingFiles": False,
    "autoUpdatePackage": False,
    "checkOnly": False,
    "ignoreWarnings": False,
    "performRetrieve": False,
    "purgeOnDelete": False,
    "rollbackOnError": True,
    "runTests": [],
    "singlePackage": True,
    "testLevel": "NoTestRun",
}

#: Metadata field type → (describe type, its fixed length; None: the XML gives ``<length>``)
FIELD_TYPES: dict[str, tuple[str, int | None]] = {
    "Text": ("string", None),
    "TextArea": ("textarea", 255),
    "LongTextArea": ("textarea", None),
    "Number": ("double", 0),
    "Currency": ("currency", 0),
    "Percent": ("percent", 0),
    "Date": ("date", 0),
    "DateTime": ("datetime", 0),
    "Url": ("url", 255),
    "Email": ("email", 80),
    "Phone": ("string", 40),
    "Checkbox": ("boolean", 0),
    "Picklist": ("picklist", 255),
}


@dataclass
class Component:
    component_type: str
    full_name: str
    file_name: str
    problem: str | None = None
    created: bool = False
    changed: bool = False

    def as_json(self, stamp: str) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "columnNumber": None,
            "componentType": self.component_type,
            "created": self.created,
            "createdDate": stamp,
            "deleted": False,
            "fileName": self.file_name,
            "forPackageManifestFile": self.component_type == "",
            "fullName": self.full_name,
            "id": None,
            "knownPackagingProblem": False,
            "lineNumber": None,
            "problem": self.problem,
            "problemType": "Error" if self.problem else None,
            "requiresProduction": False,
            "success": self.problem is None,
        }


@dataclass
class Deploy:
    id: str
    options: dict[str, Any]
    payload: bytes
    created_by: str
    created_date: str
    made_at: float
    version: str
    status: str = "Pending"
    done: bool = False
    start_date: str | None = None
    completed_date: str | None = None
    error_message: str | None = None
    error_status_code: str | None = None
    successes: list[Component] = field(default_factory=list)
    failures: list[Component] = field(default_factory=list)

    def result(self, *, details: bool) -> dict[str, Any]:
        stamp = self.completed_date or self.created_date
        answer: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "done": self.done,
            "success": self.status in ("Succeeded", "SucceededPartial"),
            "checkOnly": bool(self.options["checkOnly"]),
            "ignoreWarnings": bool(self.options["ignoreWarnings"]),
            "rollbackOnError": bool(self.options["rollbackOnError"]),
            "numberComponentsDeployed": sum(1 for c in self.successes if c.component_type),
            "numberComponentErrors": len(self.failures),
            "numberComponentsTotal": sum(1 for c in self.successes if c.component_type)
            + len(self.failures),
            "numberTestsCompleted": 0,
            "numberTestErrors": 0,
            "numberTestsTotal": 0,
            "createdDate": self.created_date,
            "startDate": self.start_date,
            "lastModifiedDate": self.completed_date or self.created_date,
            "completedDate": self.completed_date,
            "errorStatusCode": self.error_status_code,
            "errorMessage": self.error_message,
            "stateDetail": None,
            "createdBy": self.created_by,
            "createdByName": "Integration User",
            "canceledBy": None,
            "canceledByName": None,
            "runTestsEnabled": False,
            "details": None,
        }
        if details:
            answer["details"] = {
                "componentSuccesses": [c.as_json(stamp) for c in self.successes],
                "componentFailures": [c.as_json(stamp) for c in self.failures],
                "runTestResult": None,
            }
        return answer

    def answer(self, base_url: str, *, details: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "validatedDeployRequestId": None,
            "deployOptions": dict(self.options),
            "deployResult": self.result(details=details),
            "url": f"{base_url}/services/data/v{self.version}/metadata/deployRequest/{self.id}",
        }


def start(
    emu: SalesforceEmulator, session: Session, options_part: str | None, payload: bytes | None
) -> Deploy:
    """Record a deploy request (it runs later); ApiError 400 for a malformed request."""
    if payload is None:
        raise ApiError(400, "INVALID_MULTIPART_REQUEST", "Missing the file part (the zip)")
    options = dict(DEFAULT_OPTIONS)
    if options_part:
        try:
            parsed = json.loads(options_part)
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The json part is not valid JSON") from None
        given = parsed.get("deployOptions") if isinstance(parsed, dict) else None
        if isinstance(given, dict):
            options.update(given)
    if not payload.startswith(b"PK"):
        try:  # a base64 part (Content-Transfer-Encoding: base64), as some clients send it
            payload = base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            pass
    with emu.lock:
        deploy = Deploy(
            id=emu.new_id("DeployRequest"),
            options=options,
            payload=payload,
            created_by=session.user_id,
            created_date=emu.timestamp(),
            made_at=emu.now(),
            version=session.version,
        )
        emu.deploys[deploy.id] = deploy
        return deploy


def status(emu: SalesforceEmulator, deploy_id: str) -> Deploy:
    with emu.lock:
        deploy = emu.deploys.get(deploy_id)
        if not isinstance(deploy, Deploy):
            raise not_found()
        if not deploy.done:
            if emu.now() - deploy.made_at >= emu.deploy_delay:
                _run(emu, deploy)
            else:
                deploy.status = "InProgress"
                deploy.start_date = deploy.start_date or emu.timestamp()
        return deploy


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(NS + tag)
    return found.text.strip() if found is not None and found.text else None


def _bool(element: ET.Element, tag: str) -> bool:
    return (_text(element, tag) or "false").lower() == "true"


def _xml(data: bytes) -> ET.Element:
    # Standard-library parsing is safe here: see the module docstring.
    return ET.fromstring(data)  # noqa: S314


def _read_zip(payload: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_UNZIPPED:
            raise ValueError("the zip is larger than this emulator accepts")
        return {i.filename: archive.read(i) for i in infos}


def _field_def(element: ET.Element) -> tuple[str, FieldDef | None, str | None]:
    """``(fullName, field, problem)`` for one ``<fields>`` element of an object file."""
    name = _text(element, "fullName") or ""
    kind = _text(element, "type") or ""
    label = _text(element, "label")
    if not name.endswith("__c"):
        return name, None, f"Invalid custom field name: {name} (must end in __c)"
    if not label:
        return name, None, "Must specify a non-empty label for the CustomField"
    if kind not in FIELD_TYPES:
        return name, None, f"Unsupported field type in this org: {kind or '(none)'}"
    describe_type, fixed = FIELD_TYPES[kind]
    length = fixed or 0
    precision = scale = 0
    if fixed is None:  # Text and LongTextArea say their length
        try:
            length = int(_text(element, "length") or "0")
        except ValueError:
            length = 0
        limit = 255 if kind == "Text" else 131072
        if not 1 <= length <= limit:
            return name, None, f"Length must be between 1 and {limit}"
    if kind in ("Number", "Currency", "Percent"):
        try:
            precision = int(_text(element, "precision") or "18")
            scale = int(_text(element, "scale") or "0")
        except ValueError:
            return name, None, "Precision and scale must be numbers"
        if not (1 <= precision <= 18 and 0 <= scale <= precision):
            return name, None, "The sum of the length and decimal places must be an integer <= 18"
    values: tuple[str, ...] = ()
    restricted = False
    if kind == "Picklist":
        value_set = element.find(NS + "valueSet")
        definition = value_set.find(NS + "valueSetDefinition") if value_set is not None else None
        if value_set is None or definition is None:
            return name, None, "Picklist must define a valueSet with a valueSetDefinition"
        values = tuple(
            v for v in (_text(e, "fullName") for e in definition.findall(NS + "value")) if v
        )
        if not values:
            return name, None, "Picklist must have at least one value"
        restricted = _bool(value_set, "restricted")
    external_id = _bool(element, "externalId")
    if external_id and kind not in ("Text", "Number", "Email"):
        return name, None, f"External ID is not available for fields of type {kind}"
    return (
        name,
        FieldDef(
            name=name,
            label=label,
            type=describe_type,
            length=length,
            precision=precision,
            scale=scale,
            custom=True,
            external_id=external_id,
            unique=_bool(element, "unique"),
            case_sensitive=_bool(element, "caseSensitive"),
            picklist_values=values,
            restricted=restricted,
        ),
        None,
    )


def _run(emu: SalesforceEmulator, deploy: Deploy) -> None:
    deploy.start_date = deploy.start_date or emu.timestamp()
    try:
        files = _read_zip(deploy.payload)
    except (zipfile.BadZipFile, ValueError) as error:
        _finish(emu, deploy, "Failed", error_message=f"Invalid zip file: {error}")
        return
    manifests = [n for n in files if n == "package.xml" or n.endswith("/package.xml")]
    root = ""
    if "package.xml" in files:
        root = ""
    elif len(manifests) == 1 and manifests[0].count("/") == 1:
        root = manifests[0].rsplit("/", 1)[0] + "/"
    else:
        _finish(emu, deploy, "Failed", error_message="No package.xml found")
        return
    try:
        package = _xml(files[root + "package.xml"])
    except ET.ParseError as error:
        _finish(emu, deploy, "Failed", error_message=f"package.xml: {error}")
        return
    deploy.successes.append(Component("", "package.xml", "package.xml", changed=True))
    members: dict[str, list[str]] = {}
    for types in package.findall(NS + "types"):
        type_name = _text(types, "name") or ""
        members.setdefault(type_name, []).extend(
            m.text.strip() for m in types.findall(NS + "members") if m.text
        )
    planned_fields: dict[str, FieldDef] = {}
    planned_sets: list[tuple[str, str | None, dict[str, tuple[bool, bool]]]] = []

    def fail(component_type: str, full_name: str, file_name: str, problem: str) -> None:
        deploy.failures.append(Component(component_type, full_name, file_name, problem))

    for type_name, names in members.items():
        if type_name not in ("CustomObject", "CustomField", "PermissionSet"):
            for member in names:
                fail(type_name, member, "package.xml", f"Not available for deploy: {type_name}")
    wanted_fields = set(members.get("CustomField", []))
    for obj_name in {n.split(".", 1)[0] for n in wanted_fields} | set(
        members.get("CustomObject", [])
    ):
        path = f"{root}objects/{obj_name}.object"
        if obj_name != "Contact":
            fail(
                "CustomObject", obj_name, path, f"Not available for deploy in this org: {obj_name}"
            )
            continue
        if path not in files:
            if not deploy.options.get("allowMissingFiles"):
                fail("CustomObject", obj_name, path, f"No file found for {obj_name}")
            continue
        try:
            element = _xml(files[path])
        except ET.ParseError as error:
            fail("CustomObject", obj_name, path, f"Error parsing file: {error}")
            continue
        whole_object = obj_name in members.get("CustomObject", [])
        listed = set()
        for field_element in element.findall(NS + "fields"):
            name, fd, problem = _field_def(field_element)
            full_name = f"{obj_name}.{name}"
            if not whole_object and full_name not in wanted_fields:
                continue  # in the file but not in package.xml: not deployed
            listed.add(full_name)
            if problem or fd is None:
                fail("CustomField", full_name, path, problem or "invalid field")
            else:
                planned_fields[name] = fd
                existing = emu.object_def("Contact").field(name)
                deploy.successes.append(
                    Component(
                        "CustomField",
                        full_name,
                        path,
                        created=existing is None,
                        changed=existing is not None and existing != fd,
                    )
                )
        for missing in sorted(wanted_fields - listed):
            if missing.startswith(obj_name + "."):
                fail("CustomField", missing, path, f"No CustomField named {missing} found")
    for ps_name in members.get("PermissionSet", []):
        path = f"{root}permissionsets/{ps_name}.permissionset"
        if path not in files:
            if not deploy.options.get("allowMissingFiles"):
                fail("PermissionSet", ps_name, path, f"No file found for {ps_name}")
            continue
        try:
            element = _xml(files[path])
        except ET.ParseError as error:
            fail("PermissionSet", ps_name, path, f"Error parsing file: {error}")
            continue
        grants: dict[str, tuple[bool, bool]] = {}
        problem = None
        for permission in element.findall(NS + "fieldPermissions"):
            target = _text(permission, "field") or ""
            obj_name, _, field_name = target.partition(".")
            known = field_name in planned_fields or (
                obj_name == "Contact" and emu.object_def("Contact").field(field_name) is not None
            )
            if obj_name != "Contact" or not known:
                problem = f"In field: field - no CustomField named {target} found"
                break
            editable = _bool(permission, "editable")
            grants[target] = (_bool(permission, "readable") or editable, editable)
        if problem:
            fail("PermissionSet", ps_name, path, problem)
            continue
        existing_ps = emu.permission_set(ps_name)
        planned_sets.append((ps_name, _text(element, "label"), grants))
        deploy.successes.append(
            Component(
                "PermissionSet",
                ps_name,
                path,
                created=existing_ps is None,
                changed=existing_ps is not None,
            )
        )
    failed = bool(deploy.failures)
    if failed and deploy.options.get("rollbackOnError", True):
        deploy.successes = [c for c in deploy.successes if not c.component_type]
        _finish(emu, deploy, "Failed")
        return
    if not deploy.options.get("checkOnly"):
        for fd in planned_fields.values():
            emu.add_field(fd)
        for ps_name, label, grants in planned_sets:
            emu.upsert_permission_set(ps_name, grants, label=label)
    _finish(emu, deploy, "SucceededPartial" if failed else "Succeeded")


def _finish(
    emu: SalesforceEmulator, deploy: Deploy, state: str, *, error_message: str | None = None
) -> None:
    deploy.status = state
    deploy.done = True
    deploy.error_message = error_message
    deploy.error_status_code = "UNKNOWN_EXCEPTION" if error_message else None
    deploy.completed_date = emu.timestamp()


def metadata_blueprint(emu: SalesforceEmulator) -> Blueprint:
    """Routes under ``/services/data/vNN.N/metadata/deployRequest`` (authenticated and charged
    by the app's gate)."""
    bp = Blueprint("metadata", __name__)
    base = "/services/data/<version>/metadata/deployRequest"

    @bp.post(base)
    @bp.post(base + "/")
    def deploy_request(version: str) -> ResponseReturnValue:
        upload = request.files.get("file")
        options = request.form.get("json")
        if options is None and "json" in request.files:
            options = request.files["json"].read().decode("utf-8", errors="replace")
        deploy = start(emu, g.session, options, upload.read() if upload is not None else None)
        return api_json(deploy.answer(emu.instance_url, details=False), 201)

    @bp.get(base + "/<deploy_id>")
    @bp.get(base + "/<deploy_id>/")
    def deploy_status(version: str, deploy_id: str) -> ResponseReturnValue:
        details = request.args.get("includeDetails", "false").lower() == "true"
        return api_json(status(emu, deploy_id).answer(emu.instance_url, details=details))

    return bp

"""The one-click provisioning package: the repository's SFDX source (``salesforce/force-app``,
the same files ``sf project deploy start`` deploys) converted to a Metadata API zip.

Source format keeps one file per field (``objects/Contact/fields/X.field-meta.xml``); the
Metadata API format wants the fields inside ``objects/Contact.object`` and a ``package.xml``
naming every component. Only custom fields of standard or custom objects and permission sets
are converted (that is all this package holds); anything else in the folder is refused rather
than silently left out.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from adapters.salesforce.client import API_VERSION

NS = "http://soap.sforce.com/2006/04/metadata"
ET.register_namespace("", NS)


class UnsupportedSource(ValueError):
    """A file in the source folder this converter does not know how to package."""


def _element(tag: str, text: str | None = None) -> ET.Element:
    element = ET.Element(f"{{{NS}}}{tag}")
    element.text = text
    return element


def package_zip(source: Path) -> bytes:
    """The deployable zip (``package.xml`` at its root: deploy with ``singlePackage``) built
    from ``source`` (a ``force-app`` folder). Deterministic: the same source, the same bytes."""
    default = source / "main" / "default"
    objects: dict[str, list[ET.Element]] = {}
    members: dict[str, list[str]] = {"CustomField": [], "PermissionSet": []}
    files: dict[str, bytes] = {}
    for path in sorted(default.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(default).parts
        if len(rel) == 4 and rel[0] == "objects" and rel[2] == "fields":
            obj, name = rel[1], path.name.removesuffix(".field-meta.xml")
            field = ET.parse(path).getroot()  # noqa: S314 - this repository's own source
            field.tag = f"{{{NS}}}fields"
            objects.setdefault(obj, []).append(field)
            members["CustomField"].append(f"{obj}.{name}")
        elif len(rel) == 2 and rel[0] == "permissionsets":
            name = path.name.removesuffix(".permissionset-meta.xml")
            files[f"permissionsets/{name}.permissionset"] = path.read_bytes()
            members["PermissionSet"].append(name)
        else:
            raise UnsupportedSource(str(path.relative_to(source)))
    for obj, fields in objects.items():
        root = _element("CustomObject")
        root.extend(fields)
        ET.indent(root, space="    ")
        files[f"objects/{obj}.object"] = _xml(root)
    package = _element("Package")
    for kind, names in members.items():
        if not names:
            continue
        types = _element("types")
        types.extend(_element("members", n) for n in sorted(names))
        types.append(_element("name", kind))
        package.append(types)
    package.append(_element("version", API_VERSION))
    ET.indent(package, space="    ")
    files["package.xml"] = _xml(package)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            # singlePackage: package.xml at the root; a fixed date keeps the bytes stable.
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _xml(root: ET.Element) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + ET.tostring(root, encoding="utf-8", xml_declaration=False)
        + b"\n"
    )

"""Bulk API 2.0 ingest jobs for Contact: create, upload CSV once, UploadComplete, status, and
the three result files, with the shapes of the recorded answers.

CSV rules (Salesforce's): the first row names fields (case-insensitive; an unknown or invisible
one fails the whole job with ``InvalidBatch : Field name not found : X``); an empty cell leaves
the field unchanged, ``#N/A`` sets it to null. Each row succeeds or fails alone (per-row
errors are the REST ones, written ``CODE:message:fields --`` in ``sf__Error``). Result files:
``sf__Id,sf__Created,<columns>`` for successes, ``sf__Id,sf__Error,<columns>`` for failures,
``<columns>`` for rows never processed (an aborted job), LF line ends, minimal quoting, as in
the recorded answers.

Processing happens on the first status read at least ``bulk_delay`` seconds after
UploadComplete (before that the job reads ``InProgress``): deterministic, no thread.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, g, request
from flask.typing import ResponseReturnValue

from .errors import ApiError, RecordError, not_found
from .ids import PREFIX, is_valid_id, to18
from .schema import FieldDef, from_csv
from .web import api_json, json_body

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator, Session

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
OPERATIONS = ("insert", "update", "upsert")
#: Bulk API 2.0 takes at most 150 MB of CSV per job upload.
MAX_UPLOAD = 150 * 1024 * 1024


@dataclass
class IngestJob:
    id: str
    object: str
    operation: str
    external_id_field: str | None
    line_ending: str
    column_delimiter: str
    api_version: str
    created_by: str
    created_date: str
    system_modstamp: str
    state: str = "Open"
    data: bytes | None = None
    complete_at: float | None = None
    error_message: str | None = None
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    processed: int = 0
    processing_ms: int = 0

    def info(self, *, full: bool) -> dict[str, Any]:
        """The job as create / PATCH answer it (``full=False``) or as GET does."""
        answer: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
        }
        if self.external_id_field:
            answer["externalIdFieldName"] = self.external_id_field
        answer.update(
            {
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(self.api_version),
            }
        )
        if not full:
            answer["contentUrl"] = (
                f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
            )
            answer.update(
                {"lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter}
            )
            return answer
        answer.update(
            {
                "jobType": "V2Ingest",
                "lineEnding": self.line_ending,
                "columnDelimiter": self.column_delimiter,
                "numberRecordsProcessed": self.processed,
                "numberRecordsFailed": len(self.failed),
                "retries": 0,
                "totalProcessingTime": self.processing_ms,
                "apiActiveProcessingTime": self.processing_ms,
                "apexProcessingTime": 0,
            }
        )
        if self.error_message:
            answer["errorMessage"] = self.error_message
        return answer


def _job_error(message: str, status: int = 400, code: str = "INVALIDJOB") -> ApiError:
    return ApiError(status, code, message)


def create_job(emu: SalesforceEmulator, session: Session, body: Any) -> IngestJob:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
    operation = str(body.get("operation") or "")
    if operation not in OPERATIONS:
        raise _job_error(f"InvalidJob : Invalid operation: {operation or '(none)'}")
    if str(body.get("contentType") or "CSV") != "CSV":
        raise _job_error("InvalidJob : Only CSV content is supported")
    line_ending = str(body.get("lineEnding") or "LF")
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    if line_ending not in ("LF", "CRLF") or delimiter not in DELIMITERS:
        raise _job_error("InvalidJob : Invalid lineEnding or columnDelimiter")
    with emu.lock:
        try:
            obj = emu.object_def(str(body.get("object") or ""))
        except ApiError:
            raise _job_error(f"InvalidJob : Invalid object: {body.get('object')}") from None
        if obj.name != "Contact":
            raise _job_error(f"InvalidJob : Object not supported by this org: {obj.name}")
        ext_name = None
        if operation == "upsert":
            wanted = str(body.get("externalIdFieldName") or "")
            fd = obj.field(wanted) if wanted else None
            if (
                fd is None
                or not (fd.external_id or fd.type == "id")
                or not emu.field_access(session.user_id, obj, fd)[0]
            ):
                raise _job_error(
                    f"InvalidJob : Field name provided, {wanted or '(none)'} does not match an "
                    "External ID, Salesforce Id, or indexed field for Contact"
                )
            ext_name = fd.name
        stamp = emu.timestamp()
        job = IngestJob(
            id=emu.new_id("Job"),
            object=obj.name,
            operation=operation,
            external_id_field=ext_name,
            line_ending=line_ending,
            column_delimiter=delimiter,
            api_version=session.version,
            created_by=session.user_id,
            created_date=stamp,
            system_modstamp=stamp,
        )
        emu.bulk_jobs[job.id] = job
        return job


def _job(emu: SalesforceEmulator, job_id: str) -> IngestJob:
    job = emu.bulk_jobs.get(job_id)
    if not isinstance(job, IngestJob):
        raise not_found()
    return job


def upload(emu: SalesforceEmulator, job_id: str, data: bytes) -> None:
    with emu.lock:
        job = _job(emu, job_id)
        if job.state != "Open":
            raise _job_error(
                f"Job is not in a state to accept data: {job.state}", code="INVALIDJOBSTATE"
            )
        if job.data is not None:
            # Salesforce takes one upload per job ("make sure you only do 'PUT' once").
            raise _job_error(
                f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / "
                "'Delete' the current Job then create a new Job and make sure you only do "
                "'PUT' once on a given Job.",
                code="INVALIDJOBSTATE",
            )
        if len(data) > MAX_UPLOAD:
            raise _job_error("Upload exceeds 150 MB", code="INVALIDJOBSTATE")
        job.data = data


def change_state(emu: SalesforceEmulator, job_id: str, body: Any) -> IngestJob:
    state = body.get("state") if isinstance(body, dict) else None
    with emu.lock:
        job = _job(emu, job_id)
        if state == "UploadComplete":
            if job.state != "Open":
                raise _job_error(f"Job is not in Open state: {job.state}", code="INVALIDJOBSTATE")
            job.state = "UploadComplete"
            job.complete_at = emu.now()
            if job.data is None:
                job.state = "Failed"
                job.error_message = "InvalidBatch : No data uploaded for this job"
        elif state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise _job_error(
                    f"Job is already in a final state: {job.state}", code="INVALIDJOBSTATE"
                )
            job.state = "Aborted"
            if job.data is not None:
                header, rows = _parse(job)
                job.header, job.unprocessed = header, rows
        else:
            raise _job_error(f"Invalid state: {state}", code="INVALIDJOBSTATE")
        job.system_modstamp = emu.timestamp()
        return job


def status(emu: SalesforceEmulator, session: Session, job_id: str) -> IngestJob:
    with emu.lock:
        job = _job(emu, job_id)
        if job.state == "UploadComplete" and job.complete_at is not None:
            if emu.now() - job.complete_at >= emu.bulk_delay:
                _process(emu, session, job)
            else:
                job.state = "InProgress"
        elif job.state == "InProgress" and job.complete_at is not None:
            if emu.now() - job.complete_at >= emu.bulk_delay:
                _process(emu, session, job)
        return job


def _parse(job: IngestJob) -> tuple[list[str], list[list[str]]]:
    text = (job.data or b"").decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.column_delimiter])
    rows = [row for row in reader if any(cell != "" for cell in row)]
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _process(emu: SalesforceEmulator, session: Session, job: IngestJob) -> None:
    started = emu.now()
    header, rows = _parse(job)
    job.header = header
    obj = emu.object_def(job.object)
    fields: list[FieldDef | None] = []
    for name in header:
        fd = obj.field(name)
        if name.lower() == "id" and job.operation == "update":
            fields.append(None)
            continue
        if fd is None or not emu.field_access(session.user_id, obj, fd)[0]:
            job.state = "Failed"
            job.error_message = f"InvalidBatch : Field name not found : {name}"
            job.unprocessed = rows
            job.system_modstamp = emu.timestamp()
            return
        fields.append(fd)
    id_column = next((i for i, n in enumerate(header) if n.lower() == "id"), None)
    ext_column = (
        next((i for i, f in enumerate(fields) if f and f.name == job.external_id_field), None)
        if job.external_id_field
        else None
    )
    repeated: dict[str, int] = {}
    if ext_column is not None:
        for row in rows:
            key = row[ext_column].lower() if ext_column < len(row) else ""
            if key:
                repeated[key] = repeated.get(key, 0) + 1
    txn = emu.begin("bulk2.ingest")
    for row in rows:
        record_id = ""
        try:
            values: dict[str, Any] = {}
            for index, fd in enumerate(fields):
                cell = row[index] if index < len(row) else ""
                if fd is None or cell == "":
                    continue  # Bulk API 2.0: an empty cell leaves the field as it is
                values[fd.name] = from_csv(fd, cell)
            existing: str | None = None
            if job.operation == "upsert":
                assert job.external_id_field is not None
                key = row[ext_column] if ext_column is not None and ext_column < len(row) else ""
                if not key:
                    raise RecordError("MISSING_ARGUMENT", f"{job.external_id_field} not specified")
                if repeated.get(key.lower(), 0) > 1:
                    raise RecordError(
                        "DUPLICATE_VALUE",
                        f"Duplicate external id specified: {key}",
                        [job.external_id_field],
                    )
                existing = txn.unique_holder(job.external_id_field, key)
            elif job.operation == "update":
                raw_id = row[id_column] if id_column is not None and id_column < len(row) else ""
                if not raw_id:
                    raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
                if not is_valid_id(raw_id, PREFIX["Contact"]):
                    raise RecordError(
                        "MALFORMED_ID", f"Contact ID: id value of incorrect type: {raw_id}", ["Id"]
                    )
                existing = to18(raw_id)
                if txn.get(existing) is None:
                    raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            record_id = existing or ""
            saved_id, created = emu.save_contact(txn, session, values, existing)
            job.successful.append([saved_id, "true" if created else "false", *row])
        except RecordError as error:
            job.failed.append([record_id, error.as_bulk(), *row])
    txn.commit()
    job.processed = len(rows)
    job.processing_ms = max(1, int((emu.now() - started) * 1000))
    job.state = "JobComplete"
    job.system_modstamp = emu.timestamp()


def results_csv(columns: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")  # the recorded files end without a newline


def results(emu: SalesforceEmulator, job_id: str, kind: str) -> str:
    with emu.lock:
        job = _job(emu, job_id)
        if kind == "unprocessedrecords":
            if job.state not in ("JobComplete", "Failed", "Aborted"):
                raise _job_error(
                    f"Job is not in a final state: {job.state}", code="INVALIDJOBSTATE"
                )
            return results_csv(job.header, job.unprocessed)
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            raise _job_error(f"Job is not in a final state: {job.state}", code="INVALIDJOBSTATE")
        if kind == "successfulResults":
            return results_csv(["sf__Id", "sf__Created", *job.header], job.successful)
        return results_csv(["sf__Id", "sf__Error", *job.header], job.failed)


def delete_job(emu: SalesforceEmulator, job_id: str) -> None:
    with emu.lock:
        job = _job(emu, job_id)
        if job.state not in ("JobComplete", "Failed", "Aborted", "UploadComplete"):
            raise _job_error(f"Job is not in a final state: {job.state}", code="INVALIDJOBSTATE")
        del emu.bulk_jobs[job_id]


def bulk_blueprint(emu: SalesforceEmulator) -> Blueprint:
    """Routes under ``/services/data/vNN.N/jobs/ingest`` (authenticated and charged by the
    app's gate before they run)."""
    bp = Blueprint("bulk", __name__)
    base = "/services/data/<version>/jobs/ingest"

    def require_v41() -> None:
        if float(g.session.version) < 41:
            raise not_found()

    @bp.post(base)
    @bp.post(base + "/")
    def create(version: str) -> ResponseReturnValue:
        require_v41()
        return api_json(create_job(emu, g.session, json_body()).info(full=False))

    @bp.get(base)
    @bp.get(base + "/")
    def list_jobs(version: str) -> ResponseReturnValue:
        require_v41()
        with emu.lock:
            records = [j.info(full=False) for j in emu.bulk_jobs.values()]
        return api_json({"done": True, "records": records, "nextRecordsUrl": None})

    @bp.put(base + "/<job_id>/batches")
    @bp.put(base + "/<job_id>/batches/")
    def put_batches(version: str, job_id: str) -> ResponseReturnValue:
        upload(emu, job_id, request.get_data())
        return Response(b"", 201)

    @bp.patch(base + "/<job_id>")
    @bp.patch(base + "/<job_id>/")
    def patch_job(version: str, job_id: str) -> ResponseReturnValue:
        return api_json(change_state(emu, job_id, json_body()).info(full=False))

    @bp.get(base + "/<job_id>")
    @bp.get(base + "/<job_id>/")
    def get_job(version: str, job_id: str) -> ResponseReturnValue:
        return api_json(status(emu, g.session, job_id).info(full=True))

    @bp.delete(base + "/<job_id>")
    @bp.delete(base + "/<job_id>/")
    def remove_job(version: str, job_id: str) -> ResponseReturnValue:
        delete_job(emu, job_id)
        return Response(b"", 204)

    for kind in ("successfulResults", "failedResults", "unprocessedrecords"):

        def result_file(version: str, job_id: str, kind: str = kind) -> ResponseReturnValue:
            return Response(results(emu, job_id, kind), 200, mimetype="text/csv")

        bp.add_url_rule(f"{base}/<job_id>/{kind}", f"result_{kind}", result_file, methods=["GET"])
        bp.add_url_rule(
            f"{base}/<job_id>/{kind}/", f"result_{kind}_slash", result_file, methods=["GET"]
        )

    return bp

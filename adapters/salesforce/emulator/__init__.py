"""A local Salesforce org for ``ambassador demo`` and the tests.

It follows Salesforce's documented contract (and the real responses in
``tests/fixtures/salesforce/``) so the app talks to it through exactly the code it uses for a
real org: OAuth against ``SALESFORCE_LOGIN_URL`` = the emulator's base URL, whose token answers
carry ``instance_url`` = the same base URL (login host and instance host are one server).

    emu = SalesforceEmulator(client_id="id", client_secret="secret",
                             redirect_uris=["http://127.0.0.1:8000/salesforce/callback"])
    server, base_url = serve_in_thread(emu)        # or serve_in_thread(emu, tls=True)
    ...
    server.shutdown()

Emulated surface (any API version 20.0 .. ``latest_api_version``, default 66.0; unknown: 404):

* OAuth 2.0 web server flow with PKCE (S256). ``GET /services/oauth2/authorize`` shows a
  consent page with Allow / Deny (``auto_approve=True`` redirects at once); back to
  ``redirect_uri`` with ``code`` & ``state`` (or ``error=access_denied``). An unknown
  ``client_id`` or unregistered ``redirect_uri`` goes to Salesforce's error page
  (``/setup/secur/RemoteAccessErrorPage.apexp?error=invalid_client_id|redirect_uri_mismatch``),
  never to the app. ``POST /services/oauth2/token``: ``authorization_code`` (code single-use,
  15 min; ``code_verifier`` checked; client credentials in the form or HTTP Basic) and
  ``refresh_token``; answer fields ``access_token, refresh_token (code grant only, or on refresh
  under rotation), signature, scope, instance_url, id, token_type, issued_at`` and never
  ``expires_in``; errors 400 ``{"error", "error_description"}`` (``invalid_grant`` "expired
  access/refresh token", "invalid code verifier", "expired authorization code",
  ``invalid_client_id``, ``invalid_client``, ``unsupported_grant_type``).
  ``POST /services/oauth2/revoke`` (``token=``; 200, or 400 ``unsupported_token_type``).
  Identity URL ``GET /id/{orgId}/{userId}`` (Bearer) → ``user_id``, ``organization_id``, ...;
  a bad token: 403 ``Bad_OAuth_Token``. ``/.well-known/openid-configuration``.
* REST ``/services/data`` (versions list, unauthenticated) and ``/services/data/vNN.N/``:
  ``limits``; ``query?q=`` and ``query/{locator}-{offset}`` (SOQL subset: see ``soql``;
  pages of ``query_batch_size``, default 2000, or ``Sforce-Query-Options: batchSize=``);
  ``sobjects`` (describe global), ``sobjects/Contact`` (info), ``sobjects/Contact/describe``;
  ``sobjects/Contact`` POST (201), ``sobjects/Contact/{id}`` GET (``?fields=``) / PATCH (204) /
  DELETE (204); ``sobjects/Contact/Ambassador_Id__c/{value}`` PATCH (201 created, 200 updated);
  ``composite/sobjects`` PATCH (update by ``id``) and POST (create), and
  ``composite/sobjects/Contact/{externalIdField}`` PATCH (upsert) — at most 200 records, each
  with ``attributes.type``, results in order ``{id, success, errors:[{statusCode, message,
  fields}], created}``, ``allOrNone`` rolls everything back (ALL_OR_NONE_OPERATION_ROLLED_BACK
  on the valid ones), 201+ records: 400 EXCEEDED_ID_LIMIT, v45 and older: 404;
  ``sobjects/PermissionSetAssignment`` POST (``AssigneeId``, ``PermissionSetId``; a repeat is
  400 DUPLICATE_VALUE) and DELETE; queries on ``PermissionSet`` and ``PermissionSetAssignment``.
* Bulk API 2.0 ingest (``bulk``): ``jobs/ingest`` POST, ``jobs/ingest/{id}/batches`` PUT (CSV:
  empty cell = unchanged, ``#N/A`` = null; one upload per job), ``jobs/ingest/{id}`` PATCH
  (``UploadComplete`` / ``Aborted``) / GET / DELETE, ``successfulResults``, ``failedResults``,
  ``unprocessedrecords``; jobs are processed on the first status read ``bulk_delay`` seconds
  after UploadComplete.
* Metadata API deploy (``metadata``): ``metadata/deployRequest`` POST (multipart ``json`` +
  ``file`` zip in Metadata API format: ``package.xml``, ``objects/Contact.object`` with
  ``<fields>``, ``permissionsets/*.permissionset``) and ``metadata/deployRequest/{id}`` GET
  (``?includeDetails=true``); a deploy adds/changes the Contact fields and permission sets.
* A URI over 16,384 bytes: 414; URI and headers over 16,384 bytes: 431 (not charged).
* Every authenticated REST answer carries ``Sforce-Limit-Info: api-usage=N/M``. Each REST call
  (not OAuth, not the versions list) is charged to the daily pool (``daily_api_limit``,
  default 15,000; a rolling 24 hours by the injectable ``clock``); when it is spent: 403
  ``[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]``,
  not charged.
* Errors as Salesforce sends them: ``[{message, errorCode[, fields]}]`` — 401
  INVALID_SESSION_ID (``WWW-Authenticate: Token``), 400 INVALID_FIELD ("No such column ..."),
  MALFORMED_QUERY ("unexpected token: X"), MALFORMED_ID, JSON_PARSER_ERROR, 404 NOT_FOUND, 405.
* Contacts: 18-character ids (prefix 003, real checksum), ``Email``, ``FirstName``,
  ``LastName`` (required), ``Name`` (computed), audit fields, and the CONTRACT.md Ambassador
  fields once deployed, with their types enforced: Text length (STRING_TOO_LONG), restricted
  picklists (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), Number/Currency precision and scale
  (NUMBER_OUTSIDE_VALID_RANGE; values rounded to the scale), Date ``YYYY-MM-DD`` (anything else
  in JSON: JSON_PARSER_ERROR for the request), URL, Email (INVALID_EMAIL_ADDRESS).
  ``Ambassador_Id__c`` is unique and case-insensitive: upserts match it ignoring case; another
  record taking a value in use: DUPLICATE_VALUE; the same value twice in one call:
  DUPLICATE_VALUE on both. Custom fields are visible only through an assigned permission set
  (describe omits them; queries and writes naming them: INVALID_FIELD); read-only through the
  permission set: describe says not createable/updateable, writes get
  INVALID_FIELD_FOR_INSERT_UPDATE per record.

Control API (Python methods of :class:`SalesforceEmulator`, for tests and the demo):

* seeding: ``add_contact(**fields)`` (bypasses security, rules and faults; duplicates by email
  allowed), ``seed_duplicate_contacts(email, n)``, ``provision_ambassador_fields(assign=True)``
  (or ``ambassador_fields=True`` in the constructor), ``upsert_permission_set``,
  ``assign_permission_set`` / ``unassign_permission_set``, ``set_field_permission(field,
  readable=, editable=)``, ``add_field`` / ``remove_field``;
* settings: ``auto_approve``, ``rotate_refresh_tokens`` (each refresh token single-use),
  ``session_timeout`` (idle seconds before an access token stops working),
  ``daily_api_limit``, ``query_batch_size``, ``bulk_delay``, ``deploy_delay``;
* faults: ``expire_sessions()`` (next call 401 INVALID_SESSION_ID; refresh works),
  ``revoke_refresh_token(token=None)`` (refresh → invalid_grant), ``add_validation_rule(
  predicate, message, field=)`` (FIELD_CUSTOM_VALIDATION_EXCEPTION for matching records only),
  ``fail_next_records_with_lock(n)`` (per-record UNABLE_TO_LOCK_ROW),
  ``fail_next_calls_with_lock(n)`` / ``fail_next_calls(n, status=, error_code=, message=)``
  (whole calls fail, charged), ``set_api_usage(used, limit)`` / ``exhaust_api_pool()``,
  ``set_down(True)`` (503 for every request, OAuth included), ``set_latency(seconds)``,
  ``lose_next_write_answers(n, how="reset"|"5xx")`` (record writes carried out, then the
  connection dropped or a 500 answered),
  ``remove_field`` / ``unassign_permission_set`` / ``set_field_permission``,
  ``clear_faults()``;
* over HTTP (for the demo; not Salesforce, never charged or faulted, see ``control``): ``GET /``
  lists the Contacts as a CRM user would see them; ``/_emulator/state``, ``/_emulator/contacts``
  (GET, POST to seed), ``/_emulator/writes``, ``/_emulator/faults`` (POST ``{"kind": ...}``,
  DELETE to clear);
* inspection: ``contacts()``, ``contact(id)``, ``contacts_by_email(email)``,
  ``contact_by_external_id(value)``, ``write_log()`` (every committed write: api, operation,
  id, external id, fields sent, fields changed), ``api_calls()`` / ``api_call_count()``,
  ``token_requests()``, ``reset_audit()``, ``api_usage``.

Known differences from a real org: one user, one External Client App; only Contact is
writable (PermissionSet(-Assignment) through their own paths; collections of mixed types are
refused); the SOQL subset only; most standard Contact fields, duplicate rules, triggers,
sharing and the concurrent long-request limit are absent; Bulk jobs run on a status read, not
in the background. Texts and codes not taken from a recording or Salesforce's documentation
(public reports only): revoke of an unknown token (400 ``unsupported_token_type``), a repeated
external id in one call (DUPLICATE_VALUE "Duplicate external id specified"), records without
``attributes.type`` (400 INVALID_FIELD), Bulk job-creation errors (INVALIDJOB), a second upload
to a job (INVALIDJOBSTATE), an unknown Bulk job (404 NOT_FOUND), the deploy answer's less common
keys, the 503 body when "down".

Modules: ``emulator`` (the org and its lock), ``oauth`` (grants and PKCE), ``soql`` (parser and
evaluator), ``schema`` (fields, value rules, describe), ``ids`` (Salesforce ids), ``errors``,
``bulk`` (Bulk API 2.0), ``metadata`` (deploys), ``app`` (HTTP routes), ``control`` (demo
page and JSON control API), ``web`` (HTTP helpers), ``server`` (a threaded
local server, optionally TLS).
"""

from __future__ import annotations

from .app import create_emulator_app
from .emulator import SalesforceEmulator
from .errors import ApiError, RecordError
from .oauth import pkce_challenge
from .schema import AMBASSADOR_FIELDS, FieldDef
from .server import EmulatorServer, serve_in_thread

__all__ = [
    "AMBASSADOR_FIELDS",
    "ApiError",
    "EmulatorServer",
    "FieldDef",
    "RecordError",
    "SalesforceEmulator",
    "create_emulator_app",
    "pkce_challenge",
    "serve_in_thread",
]

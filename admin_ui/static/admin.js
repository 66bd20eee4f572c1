// The embedded admin pages' one script: no build step, no dependencies.
//
// Every page is a server-rendered shell (#ac, with its bootstrap data in data- attributes); this
// module fills it through /api/v1 with "Authorization: Bearer <session token>". The token comes
// from App Bridge (window.shopify.idToken()) inside the Shopify admin; without App Bridge, from
// the demo's stand-in (only in `ambassador demo`). API data reaches the page only through
// textContent and DOM APIs (never as HTML), and links from data only when they are http(s).

const root = document.getElementById("ac");
const cfg = root ? root.dataset : {};
const API = "/api/v1";
const APP = cfg.app || "/app";

// --- DOM helpers ---------------------------------------------------------------------------

const $ = (selector, scope = document) => scope.querySelector(selector);
const $$ = (selector, scope = document) => Array.from(scope.querySelectorAll(selector));

// The forms this script submits have no method attribute and never submit natively: a click
// before the page bound its handler (while it loads its figures) sent the fields as a GET of
// the page (a 400). Filters with method="get" and dialogs keep the browser's behaviour.
document.addEventListener("submit", (event) => {
  if (event.target instanceof HTMLFormElement && !event.target.hasAttribute("method")) {
    event.preventDefault();
  }
}, true);

// el("a", {href, class, text}, ...children): children and text become text nodes, never HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setText(selector, value) {
  const node = typeof selector === "string" ? $(selector) : selector;
  if (node) node.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
}

function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

// An http(s) URL from data, or null (no javascript: or data: links).
function safeUrl(value) {
  try {
    const url = new URL(String(value), window.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch (_) {
    return null;
  }
}

// A link to another page of the app, keeping shop and host (never the id token).
function pageUrl(path, extra = {}) {
  const query = new URLSearchParams({ shop: cfg.shop || "", host: cfg.host || "" });
  for (const [key, value] of Object.entries(extra)) if (value) query.set(key, value);
  return `${APP}${path}?${query}`;
}

function rowMessage(tbody, columns, text) {
  fill(tbody, el("tr", {}, el("td", { colspan: columns, text })));
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function day(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleDateString();
}

// "15.0000" → "15", "12.50" → "12.5": for rates and thresholds (money keeps its cents).
const trimDecimal = (value) => (value === null || value === undefined ? "—"
  : String(value).includes(".") ? String(value).replace(/\.?0+$/, "") : String(value));

// Money stays the API's exact decimal string, with its currency code.
const money = (amount, currency) => (amount === null || amount === undefined ? "—" : `${amount} ${currency || ""}`.trim());

function personName(p) {
  const name = [p.first_name, p.last_name].filter(Boolean).join(" ").trim();
  return name || p.email || `#${p.id}`;
}

const BADGES = {
  active: "success", approved: "success", synced: "success", credited: "success", fulfilled: "success",
  paused: "warning", pending: "warning", awaiting_approval: "warning", fulfilling: "info",
  removed: "critical", rejected: "critical", failed: "critical",
  applied: "info",
};

function badge(value) {
  return el("span", { class: `badge badge-${BADGES[value] || "neutral"}`, text: value || "—" });
}

// --- messages ------------------------------------------------------------------------------

function showError(message) {
  fill($("#ac-error"), el("p", { text: message }));
}

function clearError() {
  fill($("#ac-error"));
}

function say(message) {
  $("#ac-status").textContent = message;
}

function clearFieldErrors(form) {
  for (const node of $$("[data-error-for]", form)) node.textContent = "";
  for (const node of $$("[aria-invalid]", form)) node.removeAttribute("aria-invalid");
}

// "friend_discount.value: must be above 0" / "min_orders must be ..." / "reason is required":
// the API names the field first. Shows the message next to that field; true when it could.
function showFieldError(form, message) {
  const match = /^([a-z_][a-z0-9_.[\]]*)(?::|\s)/.exec(message || "");
  if (!match) return false;
  let name = match[1];
  while (name) {
    const target = $$("[data-error-for]", form).find((node) => node.dataset.errorFor === name);
    if (target) {
      target.textContent = message;
      const input = form.elements.namedItem(name);
      if (input && input.setAttribute) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      return true;
    }
    name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "";
  }
  return false;
}

// Runs an action; any failure becomes a message in the banner, never a blank page.
async function run(action, { form = null } = {}) {
  clearError();
  if (form) {
    clearFieldErrors(form);
    say("");
  }
  try {
    return await action();
  } catch (error) {
    if (form && error instanceof ApiError && showFieldError(form, error.message)) {
      showError(`Check the highlighted field: ${error.message}`);
    } else {
      showError(error && error.message ? error.message : "Something went wrong.");
    }
    return undefined;
  }
}

// --- the session token and the API ---------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const NO_SESSION = "This page needs a Shopify session: open the app from your Shopify admin.";
const embedded = window.top !== window.self;
let standIn = null; // { token, at } from the demo stand-in; tokens live 60 s

function withTimeout(promise, ms) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), ms)),
  ]);
}

async function sessionToken(fresh) {
  const bridge = window.shopify;
  if (embedded && bridge && typeof bridge.idToken === "function") {
    try {
      const token = await withTimeout(bridge.idToken(), 5000);
      if (token) return token;
    } catch (_) {
      // fall through to the stand-in, if this is the demo
    }
  }
  if (cfg.demoTokenUrl) {
    if (!fresh && standIn && Date.now() - standIn.at < 30000) return standIn.token;
    const response = await fetch(cfg.demoTokenUrl, { cache: "no-store", credentials: "same-origin" });
    if (response.ok) {
      const body = await response.json();
      standIn = { token: body.token, at: Date.now() };
      return body.token;
    }
  }
  throw new ApiError(401, "no_session", NO_SESSION);
}

// api("GET", "/ambassadors?status=active") → parsed JSON; throws ApiError with the API's message.
// A 401 with X-Shopify-Retry-Invalid-Session-Request: 1 is retried once with a fresh token.
async function api(method, path, { json, body, contentType } = {}, retry = true) {
  const token = await sessionToken(!retry);
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (contentType) {
    headers["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: payload, credentials: "omit" });
  } catch (_) {
    throw new ApiError(0, "network", "The app could not be reached. Check the connection and try again.");
  }
  if (response.status === 401 && retry
      && response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
    return api(method, path, { json, body, contentType }, false);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const message = error.message || `The request failed (HTTP ${response.status}).`;
    throw new ApiError(response.status, error.code || "http_error",
      response.status === 401 ? `${message}. ${NO_SESSION}` : message);
  }
  return data;
}

async function loadTiers() {
  const data = await api("GET", "/tiers");
  return data.items;
}

function tierOptions(select, tiers, selected) {
  const keep = $$("option", select).filter((o) => o.value === "");
  fill(select, ...keep, ...tiers.map((t) => el("option", {
    value: String(t.id), text: t.name, selected: selected !== undefined && String(selected) === String(t.id),
  })));
}

// --- dashboard -----------------------------------------------------------------------------

// Chart.js (npm, built by scripts/build-assets into static/vendor/) draws; every chart also has
// its figures as a table in a <details> below it and a one-line summary as its caption and its
// canvas's accessible name. Without the library (not built, or blocked) the tables open instead.
const CHART_COLOURS = ["#005bd3", "#0c5132", "#8e1f0b", "#5e4200", "#6b21a8", "#303030", "#00527c"];
const charts = new Map();

function chartLibrary() {
  const Chart = window.Chart;
  if (!Chart) return null;
  Chart.defaults.color = "#303030";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false; // no motion: figures appear at once (and tests see them)
  return Chart;
}

// Draws (or redraws) chart `key` with `config`, names it with `summary`, fills its table.
function showChart(key, config, summary, rows) {
  setText(`#${key}-summary`, summary);
  const canvas = $(`#chart-${key}`);
  canvas.setAttribute("aria-label", summary);
  const tbody = $(`#${key}-rows`);
  const heads = $$("th", tbody.closest("table"));
  if (rows.length) {
    fill(tbody, ...rows.map((cells) => el("tr", {}, ...cells.map((cell, i) => el("td",
      { class: heads[i] && heads[i].classList.contains("num") ? "num" : null }, cell)))));
  } else {
    rowMessage(tbody, heads.length, "Nothing to show yet.");
  }
  const Chart = chartLibrary();
  const box = canvas.parentElement;
  if (!Chart) {
    box.hidden = true;
    $(`#${key}-details`).open = true;
    return;
  }
  if (charts.has(key)) charts.get(key).destroy();
  if (!rows.length) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  charts.set(key, new Chart(canvas, { ...config, options: { maintainAspectRatio: false, responsive: true, ...config.options } }));
}

async function dashboardCharts() {
  const [series, program] = await Promise.all([
    api("GET", "/analytics/timeseries?days=30"),
    api("GET", "/analytics/program"),
  ]);
  const currency = series.currency || "";
  const s = program.statuses;
  const everyone = Object.values(s).reduce((a, b) => a + b, 0);
  $("#ac-empty").hidden = everyone > 0;
  setText("#kpi-orders", series.totals.orders);
  setText("#kpi-revenue", money(series.totals.revenue, currency));
  setText("#kpi-active", s.active);

  const labels = series.series.map((d) => d.date.slice(5));
  const busiest = series.series.reduce((best, d) => (Number(d.revenue) > Number(best.revenue) ? d : best), series.series[0]);
  showChart("trend", {
    data: {
      labels,
      datasets: [
        { type: "bar", label: `Revenue (${currency})`, data: series.series.map((d) => Number(d.revenue)), backgroundColor: CHART_COLOURS[0], yAxisID: "revenue" },
        { type: "line", label: "Orders", data: series.series.map((d) => d.orders), borderColor: CHART_COLOURS[1], backgroundColor: CHART_COLOURS[1], yAxisID: "orders", pointRadius: 3 },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        revenue: { position: "left", beginAtZero: true, title: { display: true, text: `Revenue (${currency})` } },
        orders: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 }, title: { display: true, text: "Orders" } },
      },
    },
  }, series.totals.orders
    ? `${series.totals.orders} orders and ${money(series.totals.revenue, currency)} credited to ambassadors in the last ${series.days} days; the best day was ${busiest.date} with ${money(busiest.revenue, currency)}.`
    : `No orders credited to ambassadors in the last ${series.days} days yet.`,
  series.totals.orders ? series.series.filter((d) => d.orders || Number(d.revenue)).map((d) => [d.date, String(d.orders), money(d.revenue, currency)]) : []);

  const tiers = program.tiers;
  showChart("tiers", {
    type: "doughnut",
    data: { labels: tiers.map((t) => t.name), datasets: [{ data: tiers.map((t) => t.ambassadors), backgroundColor: tiers.map((_, i) => CHART_COLOURS[i % CHART_COLOURS.length]) }] },
    options: { plugins: { legend: { position: "right" } } },
  }, tiers.length
    ? `Active ambassadors by tier: ${tiers.map((t) => `${t.name} ${t.ambassadors}`).join(", ")}.`
    : "No active ambassadors yet.",
  tiers.map((t) => [t.name, String(t.ambassadors)]));

  const top = program.top;
  showChart("top", {
    type: "bar",
    data: { labels: top.map((a) => personName(a)), datasets: [{ label: `Revenue credited (${currency})`, data: top.map((a) => Number(a.revenue)), backgroundColor: CHART_COLOURS[0] }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, title: { display: true, text: `Revenue (${currency})` } } } },
  }, top.length
    ? `Top ambassadors: ${top.slice(0, 3).map((a) => `${personName(a)} ${money(a.revenue, a.currency)}`).join(", ")}${top.length > 3 ? ` and ${top.length - 3} more` : ""}.`
    : "No ambassador has brought an order yet.",
  top.map((a) => [ambassadorLink(a.id, personName(a)), a.code || "—", String(a.orders), money(a.revenue, a.currency)]));
}

async function pageDashboard() {
  const intake = (async () => {
    const shop = await api("GET", "/shop");
    const w = shop.webhooks;
    setText("#ac-intake", w.failed
      ? `${w.failed} failed, ${w.pending} waiting`
      : `healthy (${w.pending} waiting${w.last_received_at ? `, last received ${when(w.last_received_at)}` : ""})`);
  })();
  const figures = dashboardCharts().catch((error) => {
    for (const key of ["trend", "tiers", "top"]) {
      setText(`#${key}-summary`, "The figures could not be loaded.");
      rowMessage($(`#${key}-rows`), $$("th", $(`#${key}-rows`).closest("table")).length, "Could not load.");
    }
    throw error;
  });
  await Promise.all([intake, figures]);
}

// --- system health -------------------------------------------------------------------------

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Number(seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

async function pageHealth() {
  async function reload() {
    const [webhooks, system, sf, shopify, failedJobs] = await Promise.all([
      api("GET", "/health/webhooks"),
      api("GET", "/health/system"),
      api("GET", "/salesforce"),
      api("GET", "/health/shopify-budget"),
      api("GET", "/health/jobs/failed"),
    ]);
    const i = webhooks.inbox;
    setText("#h-pending", i.pending);
    setText("#h-processing", i.processing);
    fill($("#h-failed"), i.failed ? badge("failed") : null, ` ${i.failed}`);
    setText("#h-oldest", i.oldest_pending_age_seconds === null ? "none waiting" : `${duration(i.oldest_pending_age_seconds)} ago`);
    setText("#h-last", when(i.last_received_at));
    const lag = webhooks.lag;
    setText("#h-lag", lag.deliveries ? `${duration(lag.p50_seconds)} / ${duration(lag.max_seconds)} over ${lag.deliveries} deliveries` : "no deliveries in the last 24 hours");
    const r = webhooks.reconciliation;
    const last = r.last_run;
    setText("#h-run", last ? `${last.status}, ${when(last.finished_at || last.started_at)}${last.error ? `: ${last.error}` : ""}` : "not run yet");
    setText("#h-seen", last ? `${last.seen} (${last.applied} applied, ${last.errors} errors)` : null);
    setText("#h-found", last ? last.found_only_by_reconciliation : null);
    setText("#h-found7", r.found_only_by_reconciliation_7d);
    setText("#h-through", when(r.complete_through));

    const jobs = system.jobs;
    setText("#h-jobs-mode", { rq: "Redis queues (RQ) served by the worker processes.", "in-process": "Jobs run inside the web process (embedded mode: no Redis configured).", unavailable: "Redis did not answer: jobs wait until it is back." }[jobs.mode] || jobs.mode);
    if (jobs.queues.length) {
      fill($("#h-queues"), ...jobs.queues.map((q) => el("tr", {},
        el("td", { text: q.name }), el("td", { class: "num", text: q.queued }),
        el("td", { class: "num", text: q.started }), el("td", { class: "num", text: q.failed }))));
    } else {
      rowMessage($("#h-queues"), 4, "No queues to show.");
    }
    const parked = system.failed_deliveries;
    if (parked.length) {
      fill($("#h-parked"), ...parked.map((d) => el("tr", {},
        el("td", { text: when(d.received_at) }), el("td", {}, el("code", { text: d.topic })),
        el("td", { class: "num", text: d.attempts }), el("td", { text: d.last_error || "—" }),
        el("td", {}, el("button", {
          type: "button", class: "btn", text: "Try again", "aria-label": `Try the ${d.topic} delivery of ${when(d.received_at)} again`,
          onclick: (event) => run(async () => {
            event.currentTarget.disabled = true;
            await api("POST", `/health/deliveries/${d.id}/replay`);
            say(`The ${d.topic} delivery is back in line.`);
            await reload();
          }),
        })))));
    } else {
      rowMessage($("#h-parked"), 5, "Nothing parked: every delivery was applied.");
    }
    const meter = $("#h-shopify-meter");
    const sb = shopify.budget;
    if (sb) {
      meter.max = sb.maximum_available;
      meter.value = sb.used;
      meter.low = sb.maximum_available * 0.5;
      meter.high = sb.maximum_available * 0.8;
      meter.hidden = false;
      setText("#h-shopify-budget", `${Math.round(sb.used)} of ${Math.round(sb.maximum_available)} points in use (${Math.round(sb.currently_available)} available, refilling ${sb.restore_rate}/s); read ${when(sb.read_at)}`);
    } else {
      meter.hidden = true;
      setText("#h-shopify-budget", "No call to Shopify recorded yet.");
    }
    if (failedJobs.items.length) {
      fill($("#h-failed-jobs"), ...failedJobs.items.map((j) => el("tr", {},
        el("td", { text: when(j.failed_at) }), el("td", {}, el("code", { text: j.job })),
        el("td", { text: j.error }),
        el("td", {}, el("button", {
          type: "button", class: "btn", text: "Retry", "aria-label": `Retry the ${j.job} job that failed ${when(j.failed_at)}`,
          onclick: (event) => run(async () => {
            event.currentTarget.disabled = true;
            const r = await api("POST", `/health/jobs/${encodeURIComponent(j.id)}/retry`);
            say(r.requeued ? `The ${j.job} job is queued again.` : `The ${j.job} job was already queued again.`);
            await reload();
          }),
        })))));
    } else {
      rowMessage($("#h-failed-jobs"), 4, {
        "in-process": "Jobs run inside the web process here: a failure is logged and its periodic job tries again.",
        unavailable: "Redis did not answer: failed jobs cannot be listed until it is back.",
      }[failedJobs.mode] || "No failed jobs.");
    }
    const b = sf.budget || {};
    setText("#h-sf-budget", sf.enabled === false ? "Salesforce is not configured."
      : b.limit ? `${b.used} of ${b.limit} daily API calls used${b.paused ? `, paused until ${when(b.paused_until)}` : ""}` : "not connected, or no call made yet");
    setText("#h-updated", `Updated ${new Date().toLocaleTimeString()}; refreshes every 15 seconds.`);
  }
  await reload();
  // Live while the page is open and visible; a failed refresh shows its message and retries.
  setInterval(() => { if (!document.hidden) run(reload); }, 15000);
}

// --- ambassadors ---------------------------------------------------------------------------

function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // no formulas when opened in a spreadsheet
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function downloadCsv(filename, header, rows) {
  const lines = [header, ...rows].map((row) => row.map(csvCell).join(","));
  const blob = new Blob([`${lines.join("\r\n")}\r\n`], { type: "text/csv;charset=utf-8" });
  const link = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function pageAmbassadors() {
  const form = $("#ac-filters");
  const tbody = $("#ac-rows");
  const next = $("#ac-next");
  const prev = $("#ac-prev");
  const selectAll = $("#ac-select-all");
  const tierSelect = $("#f-tier");
  let cursors = [null];
  let page = 0;
  let rows = [];
  let nextCursor = null;

  const selectedIds = () => $$("input[data-id]:checked", tbody).map((box) => Number(box.dataset.id));
  function updateSelection() {
    const count = selectedIds().length;
    setText("#ac-selected", count ? `${count} selected` : "None selected");
    selectAll.checked = count > 0 && count === rows.length;
  }

  function render() {
    if (!rows.length) {
      rowMessage(tbody, 11, "No ambassadors match.");
    } else {
      fill(tbody, ...rows.map((a) => el("tr", {},
        el("td", {}, el("input", {
          type: "checkbox", "data-id": a.id, "aria-label": `Select ${personName(a)}`, onchange: updateSelection,
        })),
        el("td", {}, el("a", { href: pageUrl(`/ambassadors/${a.id}`), text: personName(a) })),
        el("td", { text: a.email || "—" }),
        el("td", {}, badge(a.status)),
        el("td", { text: a.tier ? a.tier.name : "—" }),
        el("td", {}, a.code ? el("code", { text: a.code }) : "—"),
        el("td", { class: "num", text: a.stats.attributed_orders }),
        el("td", { class: "num", text: money(a.stats.attributed_revenue, a.stats.currency) }),
        el("td", { class: "num wrap", text: `${a.engagement.score.toFixed(1)} (${a.engagement.band})` }),
        el("td", { class: "num", text: money(a.stats.rewards.pending, a.stats.currency) }),
        el("td", { class: "nowrap", text: day(a.created_at) }),
      )));
    }
    next.disabled = !nextCursor;
    prev.disabled = page === 0;
    updateSelection();
  }

  // Sort: the column buttons set it (the same column again: the other way); numbers start
  // highest first, names A to Z. A new sort starts again at the first page (cursors are bound
  // to their sort).
  const sortInput = $("#f-sort");
  function showSort() {
    const key = sortInput.value.replace(/^-/, "");
    const descending = sortInput.value.startsWith("-");
    for (const th of $$("th[data-sort]")) {
      const active = th.dataset.sort === key;
      th.setAttribute("aria-sort", active ? (descending ? "descending" : "ascending") : "none");
      const button = $("button", th);
      button.dataset.arrow = active ? (descending ? "↓" : "↑") : "";
    }
  }
  for (const th of $$("th[data-sort]")) {
    $("button", th).addEventListener("click", () => {
      const key = th.dataset.sort;
      const current = sortInput.value;
      sortInput.value = current === key ? `-${key}` : current === `-${key}` ? key : (key === "name" ? key : `-${key}`);
      showSort();
      form.requestSubmit();
    });
  }
  showSort();

  async function load() {
    const query = new URLSearchParams({ limit: $("#ac-table").dataset.pageSize || "50" });
    for (const name of ["q", "status", "tier", "band", "sort"]) {
      const value = form.elements.namedItem(name).value.trim();
      if (value) query.set(name, value);
    }
    if (cursors[page]) query.set("cursor", cursors[page]);
    rowMessage(tbody, 11, "Loading…");
    const data = await run(() => api("GET", `/ambassadors?${query}`));
    if (!data) return rowMessage(tbody, 11, "Could not load the ambassadors.");
    rows = data.items;
    nextCursor = data.next_cursor;
    return render();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    page = 0;
    const url = new URL(window.location.href);
    for (const name of ["q", "status", "tier", "band", "sort"]) {
      const value = form.elements.namedItem(name).value.trim();
      if (value) url.searchParams.set(name, value); else url.searchParams.delete(name);
    }
    window.history.replaceState(null, "", url);
    load();
  });
  next.addEventListener("click", () => { cursors[page + 1] = nextCursor; page += 1; load(); });
  prev.addEventListener("click", () => { page = Math.max(0, page - 1); load(); });
  selectAll.addEventListener("change", () => {
    for (const box of $$("input[data-id]", tbody)) box.checked = selectAll.checked;
    updateSelection();
  });

  for (const button of $$("[data-bulk]")) {
    button.addEventListener("click", async () => {
      const ids = selectedIds();
      if (!ids.length) return showError("Select at least one ambassador first.");
      const status = button.dataset.bulk;
      const reason = $("#bulk-reason").value.trim() || null;
      const verb = status === "paused" ? "Pausing" : "Activating";
      const failures = [];
      clearError();
      for (const [index, id] of ids.entries()) {
        say(`${verb} ${index + 1} of ${ids.length}…`);
        try {
          await api("POST", `/ambassadors/${id}/status`, { json: { status, reason } });
        } catch (error) {
          const who = rows.find((a) => a.id === id);
          failures.push(`${who ? personName(who) : `#${id}`}: ${error.message}`);
        }
      }
      say(`${ids.length - failures.length} of ${ids.length} ${status === "paused" ? "paused" : "activated"}.`);
      if (failures.length) showError(`Not changed: ${failures.join("; ")}`);
      return load();
    });
  }

  // Set one tier (locked, so the automatic evaluation leaves it) on every selected ambassador.
  $("#bulk-tier-apply").addEventListener("click", async () => {
    const ids = selectedIds();
    if (!ids.length) return showError("Select at least one ambassador first.");
    const select = $("#bulk-tier");
    const tierId = select.value ? Number(select.value) : null;
    const tierName = select.selectedOptions[0] ? select.selectedOptions[0].textContent : "No tier";
    const reason = $("#bulk-reason").value.trim() || null;
    const failures = [];
    clearError();
    for (const [index, id] of ids.entries()) {
      say(`Setting the tier ${index + 1} of ${ids.length}…`);
      try {
        await api("POST", `/ambassadors/${id}/tier`, { json: { tier_id: tierId, reason, locked: tierId !== null } });
      } catch (error) {
        const who = rows.find((a) => a.id === id);
        failures.push(`${who ? personName(who) : `#${id}`}: ${error.message}`);
      }
    }
    say(`${ids.length - failures.length} of ${ids.length} now in ${tierName}.`);
    if (failures.length) showError(`Not changed: ${failures.join("; ")}`);
    return load();
  });

  // Invite: one request for the selection, with a fresh idempotency key per click (a retry
  // of the same click cannot send twice); the outcome of each row is listed.
  $("#bulk-invite").addEventListener("click", async () => {
    const ids = selectedIds();
    if (!ids.length) return showError("Select at least one ambassador first.");
    clearError();
    const button = $("#bulk-invite");
    const key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    button.disabled = true;
    say(`Inviting ${ids.length}…`);
    try {
      const result = await run(() => api("POST", "/ambassadors/invitations", { json: { ambassador_ids: ids, idempotency_key: key } }));
      if (!result) return undefined;
      const label = { invited: "invited", already_invited: "already invited", refused: "not invited" };
      const who = (id) => { const a = rows.find((r) => r.id === id); return a ? personName(a) : `#${id}`; };
      fill($("#ac-invite-results"),
        el("h3", { class: "subheading", text: `Invitations: ${result.invited} of ${result.items.length} sent` }),
        el("ul", { class: "invite-results" }, ...result.items.map((r) => el("li", { "data-outcome": r.outcome },
          el("span", { class: `badge badge-${{ invited: "success", refused: "critical" }[r.outcome] || "neutral"}`, text: label[r.outcome] || r.outcome }),
          ` ${who(r.ambassador_id)}${r.reason ? `: ${r.reason}` : ""}`))));
      return say(`${result.invited} of ${result.items.length} invited.`);
    } finally {
      button.disabled = false;
    }
  });

  $("#ac-export").addEventListener("click", () => {
    const ids = new Set(selectedIds());
    const chosen = ids.size ? rows.filter((a) => ids.has(a.id)) : rows;
    if (!chosen.length) return showError("There are no rows to export.");
    downloadCsv("ambassadors.csv",
      ["id", "first_name", "last_name", "email", "status", "tier", "code", "share_url",
        "orders", "revenue", "rewards_pending", "rewards_approved", "rewards_paid", "currency"],
      chosen.map((a) => [a.id, a.first_name, a.last_name, a.email, a.status, a.tier ? a.tier.name : "",
        a.code, a.share_url, a.stats.attributed_orders, a.stats.attributed_revenue,
        a.stats.rewards.pending, a.stats.rewards.approved, a.stats.rewards.paid, a.stats.currency]));
    return say(`Exported ${chosen.length} ambassador${chosen.length === 1 ? "" : "s"}.`);
  });

  const tiers = await run(loadTiers);
  if (tiers) {
    const initial = tierSelect.dataset.initial;
    const match = tiers.find((t) => String(t.id) === initial || t.name === initial);
    tierOptions(tierSelect, tiers, match ? match.id : undefined);
    tierOptions($("#bulk-tier"), tiers);
  }
  await load();
}

// --- one ambassador ------------------------------------------------------------------------

async function pageAmbassador() {
  const id = cfg.id;
  let ambassador = null;
  let ledgerCursor = null;

  function render(a) {
    ambassador = a;
    setText("#a-name", personName(a));
    document.title = `${personName(a)} · Ambassador Connector`;
    setText("#a-email", a.email);
    fill($("#a-status"), badge(a.status));
    setText("#a-source", a.source);
    setText("#a-since", day(a.since));
    const social = Object.entries(a.social || {});
    setText("#a-social", social.map(([network, handle]) => `${network}: ${handle}`).join(", "));
    setText("#a-code", a.code);
    fill($("#a-code-state"), badge(a.code_state));
    const share = safeUrl(a.share_url);
    fill($("#a-share"), share ? el("a", { href: share, target: "_blank", rel: "noopener noreferrer", text: share }) : "—");
    const s = a.stats;
    setText("#s-orders", s.attributed_orders);
    setText("#s-revenue", money(s.attributed_revenue, s.currency));
    setText("#s-pending", money(s.rewards.pending, s.currency));
    setText("#s-approved", money(s.rewards.approved, s.currency));
    setText("#s-paid", money(s.rewards.paid, s.currency));
    setText("#s-reversed", money(s.rewards.reversed, s.currency));
    setText("#s-balance", money(s.balance, s.currency));
    setText("#s-last", day(s.last_referral_at));
    setText("#a-tier", a.tier ? a.tier.name : "No tier");
    fill($("#a-locked"), a.tier_locked ? el("span", { class: "badge badge-info", text: "locked" }) : null);
    $("#tier-select").value = a.tier ? String(a.tier.id) : "";
    for (const button of $$("#status-form button")) button.disabled = button.value === a.status;
  }

  async function loadHistory() {
    const data = await run(() => api("GET", `/ambassadors/${id}/history`));
    const tbody = $("#history-rows");
    if (!data) return rowMessage(tbody, 5, "Could not load the history.");
    if (!data.items.length) return rowMessage(tbody, 5, "Nothing yet.");
    return fill(tbody, ...data.items.slice().reverse().map((e) => el("tr", {},
      el("td", { text: when(e.at) }),
      el("td", { text: e.kind.replace(/_/g, " ") }),
      el("td", { text: e.before || e.after ? `${e.before || "—"} → ${e.after || "—"}` : "—" }),
      el("td", { text: e.actor }),
      el("td", { text: e.reason || "—" }),
    )));
  }

  async function loadLedger(more) {
    const query = more && ledgerCursor ? `?cursor=${encodeURIComponent(ledgerCursor)}` : "";
    const data = await run(() => api("GET", `/ambassadors/${id}/ledger${query}`));
    const tbody = $("#ledger-rows");
    if (!data) return rowMessage(tbody, 5, "Could not load the ledger.");
    const rows = data.items.map((e) => el("tr", {},
      el("td", { text: when(e.created_at) }),
      el("td", {}, e.order_id ? el("button", {
        type: "button", class: "btn btn-plain", text: String(e.order_id), "aria-expanded": "false",
        "aria-label": `Order ${e.order_id}: why it was credited`, onclick: (event) => explainOrder(event.currentTarget, e.order_id),
      }) : "—"),
      el("td", { text: e.kind.replace(/_/g, " ") }),
      el("td", { class: "num", text: money(e.amount, e.currency) }),
      el("td", { text: e.reason || "—" }),
    ));
    if (more) tbody.append(...rows);
    else if (rows.length) fill(tbody, ...rows);
    else rowMessage(tbody, 5, "No rewards yet.");
    ledgerCursor = data.next_cursor;
    $("#ledger-more").hidden = !ledgerCursor;
    return undefined;
  }

  async function act(request, done) {
    const a = await request();
    render(a);
    say(done(a));
    await loadHistory();
  }

  // The order's explanation record (rule, reason, every code considered) in a row below it.
  async function explainOrder(button, orderId) {
    const row = button.closest("tr");
    const open = row.nextElementSibling && row.nextElementSibling.dataset.explains === String(orderId);
    if (open) {
      row.nextElementSibling.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const x = await run(() => api("GET", `/orders/${encodeURIComponent(orderId)}/attribution`));
    if (!x) return;
    const candidates = x.candidates.map((c) => el("li", {},
      el("code", { text: c.code || "—" }), ` (${c.discount} ${x.currency} off): ${c.verdict.replace(/_/g, " ")} — ${c.explanation}`));
    const detail = el("tr", { "data-explains": String(orderId), class: "explanation" }, el("td", { colspan: 5 },
      el("p", { text: `${x.credited ? "Credited" : "Not credited"} by the rule “${x.rule}”: ${x.explanation}` }),
      el("p", { text: `Revenue credited ${money(x.revenue, x.currency)}, reward ${money(x.reward, x.currency)}${x.rate ? ` at ${trimDecimal(x.rate)}%` : ""}${x.cancelled ? "; the order was cancelled" : ""}.` }),
      candidates.length ? el("ul", {}, ...candidates) : null));
    row.after(detail);
    button.setAttribute("aria-expanded", "true");
  }

  const codeForm = $("#code-form");
  codeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = $("#code-input").value.trim();
    run(() => act(() => api("POST", `/ambassadors/${id}/code`, { json: { code } }),
      (a) => `The code is now ${a.code}.`), { form: codeForm });
  });

  $("#tier-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("#tier-select").value;
    const body = {
      tier_id: value ? Number(value) : null,
      reason: $("#tier-reason").value.trim() || null,
      locked: $("#tier-lock").checked,
    };
    run(() => act(() => api("POST", `/ambassadors/${id}/tier`, { json: body }),
      (a) => `Tier: ${a.tier ? a.tier.name : "none"}${a.tier_locked ? " (locked)" : ""}.`));
  });

  $("#status-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const status = event.submitter ? event.submitter.value : "";
    if (!status) return;
    if (status === "removed" && !window.confirm(`Remove ${personName(ambassador || {})} from the program? Their code stops working.`)) return;
    const reason = $("#status-reason").value.trim() || null;
    run(() => act(() => api("POST", `/ambassadors/${id}/status`, { json: { status, reason } }),
      (a) => `Status: ${a.status}.`));
  });

  $("#ledger-more").addEventListener("click", () => loadLedger(true));

  async function loadCrm() {
    const x = await run(() => api("GET", `/ambassadors/${id}/salesforce`));
    if (!x) return setText("#crm-state", "Could not load the Salesforce state.");
    const STATES = { synced: "synced", retry: "waiting for a retry", parked: "parked (needs attention)", not_synced: "not written yet" };
    fill($("#crm-state"), badge(x.state === "not_synced" ? "pending" : x.state === "retry" ? "pending" : x.state === "parked" ? "failed" : x.state),
      ` ${STATES[x.state] || x.state}${x.retry_at ? `, next try ${when(x.retry_at)}` : ""}`);
    setText("#crm-contact", x.contact_id);
    setText("#crm-synced", x.synced_at ? when(x.synced_at) : null);
    setText("#crm-error", x.error_code ? `${x.error_code}: ${x.error_message || ""}` : x.note);
    return undefined;
  }

  const tiers = await run(loadTiers);
  if (tiers) tierOptions($("#tier-select"), tiers);
  const a = await run(() => api("GET", `/ambassadors/${id}`));
  if (a) render(a);
  async function loadRewards() {
    const r = await api("GET", `/ambassadors/${id}/rewards`);
    setText("#r-pending", `${r.pending} ${r.currency}`);
    setText("#r-unlocks", r.unlocks.map((u) => `${u.amount} on ${day(u.at)}`).join(", ") || "nothing in hold");
    setText("#r-payable", r.points === null ? `${r.payable} ${r.currency}` : `${r.payable} ${r.currency} (${r.points} points)`);
    setText("#r-form", FORMS[r.form] || r.form);
    setText("#r-next", r.next_payout_at ? `${day(r.next_payout_at)} (minimum ${r.minimum} ${r.currency})` : "when you run payouts");
    if (r.payouts.length) {
      fill($("#r-payouts"), ...r.payouts.map((p) => el("tr", {},
        el("td", { text: `#${p.id}` }),
        el("td", { text: FORMS[p.form] || p.form }),
        el("td", { class: "num", text: p.value }),
        el("td", {}, badge(p.state)),
        el("td", { text: when(p.fulfilled_at) }))));
    } else {
      rowMessage($("#r-payouts"), 5, "No payouts yet.");
    }
  }
  await Promise.all([loadHistory(), loadLedger(false), loadRewards(), loadCrm()]);
}

// --- find ambassadors ----------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function reportList(title, items, describe) {
  if (!items.length) return null;
  return el("div", {}, el("h3", { text: `${title} (${items.length})` }),
    el("ul", {}, ...items.map((item) => el("li", {}, ...describe(item)))));
}

function ambassadorLink(id, label) {
  return id ? el("a", { href: pageUrl(`/ambassadors/${id}`), text: label }) : label;
}

async function pageCandidates() {
  const tbody = $("#cand-rows");
  const all = $("#cand-all");
  const checked = () => $$("input[data-customer]:checked", tbody).map((box) => box.dataset.customer);
  const names = new Map();
  function updateSelection() {
    const count = checked().length;
    setText("#cand-selected", count ? `${count} selected` : "None selected");
  }

  // Every customer is ranked by a scan in the background (a Shopify bulk operation for large
  // stores); its progress shows here until the ranked list is ready.
  async function scanCandidates() {
    const box = $("#scan-progress");
    const bar = $("#scan-bar");
    const started = await run(() => api("POST", "/candidates/scans", { json: { limit: 50 } }));
    if (!started) return null;
    box.hidden = false;
    let errors = 0;
    for (;;) {
      let scan;
      try {
        scan = await api("GET", `/candidates/scans/${started.scan_id}`);
        errors = 0;
      } catch (error) {
        errors += 1;
        if (errors >= 5) {
          box.hidden = true;
          showError(`Lost track of the scan: ${error.message}.`);
          return null;
        }
        await sleep(2000);
        continue;
      }
      bar.max = Math.max(scan.customers, scan.scanned, 1);
      bar.value = scan.scanned;
      setText("#scan-progress-text", `Scanning customers… ${scan.scanned} of about ${scan.customers} done`);
      if (scan.status === "done") {
        box.hidden = true;
        return scan;
      }
      if (scan.status === "failed") {
        box.hidden = true;
        showError(scan.error ? scan.error.message : "The scan failed.");
        return null;
      }
      await sleep(1500);
    }
  }

  async function loadCandidates() {
    rowMessage(tbody, 6, "Scanning customers…");
    const data = await scanCandidates();
    if (!data) return rowMessage(tbody, 6, "Could not rank the customers.");
    if (!data.items.length) return rowMessage(tbody, 6, "No customers to suggest: everyone with orders is an ambassador already.");
    for (const c of data.items) names.set(Number(c.customer_id.split("/").pop()), personName(c));
    fill(tbody, ...data.items.map((c) => el("tr", {},
      el("td", {}, el("input", {
        type: "checkbox", "data-customer": c.customer_id, "aria-label": `Select ${personName(c)}`, onchange: updateSelection,
      })),
      el("td", { text: personName(c) }),
      el("td", { text: c.email || "—" }),
      el("td", { class: "num", text: c.orders }),
      el("td", { class: "num", text: money(c.amount_spent, c.currency) }),
      el("td", { text: day(c.last_order_at) }),
    )));
    all.checked = false;
    return updateSelection();
  }

  all.addEventListener("change", () => {
    for (const box of $$("input[data-customer]", tbody)) box.checked = all.checked;
    updateSelection();
  });

  const who = (id) => names.get(Number(id)) || `customer ${id}`;
  function showTaskReport(task) {
    const report = task.report || { enrolled: [], existing: [], rejected: [] };
    fill($("#enrol-report"),
      el("p", { text: `Enrolled ${report.enrolled.length}, already ambassadors ${report.existing.length}, not enrolled ${report.rejected.length}.` }),
      reportList("Enrolled", report.enrolled, (r) => [ambassadorLink(r.ambassador_id, who(r.customer_id))]),
      reportList("Already ambassadors", report.existing, (r) => [ambassadorLink(r.ambassador_id, who(r.customer_id))]),
      reportList("Not enrolled", report.rejected, (r) => [`${who(r.customer_id)}: ${r.reason}`]));
  }

  const enrolButton = $("#enrol-button");
  $("#enrol-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = checked();
    if (!ids.length) return showError("Select at least one customer to enrol.");
    enrolButton.disabled = true;
    fill($("#enrol-report"));
    try {
      const started = await run(() => api("POST", "/ambassadors/bulk", { json: { customer_ids: ids } }));
      if (!started) return undefined;
      const box = $("#enrol-progress");
      const bar = $("#enrol-bar");
      box.hidden = false;
      bar.max = ids.length;
      bar.value = 0;
      setText("#enrol-progress-text", `0 of ${ids.length} processed`);
      let errors = 0;
      for (;;) {
        let task;
        try {
          task = await api("GET", `/tasks/${started.task_id}`);
          errors = 0;
        } catch (error) {
          errors += 1;
          if (errors >= 5) return showError(`Lost track of the enrolment: ${error.message}. It goes on in the background.`);
          await sleep(2000);
          continue;
        }
        bar.max = Math.max(task.total, 1);
        bar.value = task.done + task.failed;
        setText("#enrol-progress-text",
          `${task.done + task.failed} of ${task.total} processed${task.failed ? ` (${task.failed} not enrolled)` : ""}`);
        if (task.status !== "running") {
          showTaskReport(task);
          say(`Enrolment finished: ${task.done} of ${task.total} enrolled or already ambassadors.`);
          return loadCandidates();
        }
        await sleep(1000);
      }
    } finally {
      enrolButton.disabled = false;
    }
  });

  const importForm = $("#import-form");
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("#import-file").files[0];
    if (!file) return showError("Choose a CSV file first.");
    fill($("#import-report"));
    say(`Importing ${file.name}…`);
    const report = await run(() => api("POST", "/ambassadors/import", { body: file, contentType: "text/csv" }));
    if (!report) return say("");
    say(`Imported ${file.name}.`);
    const c = report.counts;
    const rejected = report.rejected.length ? el("div", {}, el("h3", { text: `Rejected rows (${c.rejected})` }),
      el("div", { class: "table-wrap" }, el("table", { class: "table" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Line" }), el("th", { scope: "col", text: "Email" }),
          el("th", { scope: "col", text: "Reason" }))),
        el("tbody", {}, ...report.rejected.map((r) => el("tr", {},
          el("td", { text: r.line }), el("td", { text: r.email || "—" }), el("td", { text: r.reason }))))))) : null;
    fill($("#import-report"),
      el("p", { text: `Enrolled ${c.enrolled}, already ambassadors ${c.existing}, rejected ${c.rejected}.` }),
      rejected,
      reportList("Enrolled", report.enrolled, (r) => [ambassadorLink(r.ambassador_id, r.email), r.code ? ` (${r.code})` : ""]));
    return loadCandidates();
  });

  await loadCandidates();
}

// --- applications --------------------------------------------------------------------------

function votesText(v) {
  return `${v.approve} approve, ${v.reject} reject (${v.required} approval${v.required === 1 ? "" : "s"} needed)`;
}

async function pageApplications() {
  const form = $("#app-filter");
  const tbody = $("#app-rows");
  const next = $("#app-next");
  const prev = $("#app-prev");
  let cursors = [null];
  let page = 0;
  let nextCursor = null;

  async function load() {
    const status = $("#app-status").value;
    const query = new URLSearchParams({ status, limit: "50" });
    if (cursors[page]) query.set("cursor", cursors[page]);
    rowMessage(tbody, 5, "Loading…");
    const data = await run(() => api("GET", `/applications?${query}`));
    if (!data) return rowMessage(tbody, 5, "Could not load the applications.");
    nextCursor = data.next_cursor;
    next.disabled = !nextCursor;
    prev.disabled = page === 0;
    if (!data.items.length) return rowMessage(tbody, 5, `No ${status} applications.`);
    return fill(tbody, ...data.items.map((p) => el("tr", {},
      el("td", {}, el("a", { href: pageUrl(`/applications/${p.id}`), text: personName(p) })),
      el("td", { text: p.email || "—" }),
      el("td", { text: day(p.created_at) }),
      el("td", { text: votesText(p.votes) }),
      el("td", {}, badge(p.status)),
    )));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    page = 0;
    const url = new URL(window.location.href);
    url.searchParams.set("status", $("#app-status").value);
    window.history.replaceState(null, "", url);
    load();
  });
  next.addEventListener("click", () => { cursors[page + 1] = nextCursor; page += 1; load(); });
  prev.addEventListener("click", () => { page = Math.max(0, page - 1); load(); });
  await load();
}

async function pageApplication() {
  const id = cfg.id;

  function render(p) {
    setText("#p-name", personName(p));
    document.title = `${personName(p)} · Ambassador Connector`;
    setText("#p-email", p.email);
    fill($("#p-status"), badge(p.status));
    setText("#p-created", when(p.created_at));
    setText("#p-customer", p.customer_id ? p.customer_id.split("/").pop() : "not a customer yet");
    setText("#p-decision", p.decided_at
      ? `${p.status} by ${p.decided_by || "—"} on ${when(p.decided_at)}${p.reason ? `: ${p.reason}` : ""}${p.reapply_on ? ` (may reapply from ${day(p.reapply_on)})` : ""}`
      : "");
    fill($("#p-ambassador"), p.ambassador
      ? ambassadorLink(p.ambassador.id, `${p.ambassador.code || "no code yet"} (${p.ambassador.status})`)
      : "—");
    const answers = p.answers.flatMap((x) => [el("dt", { text: x.label }), el("dd", { text: x.answer || "—" })]);
    fill($("#p-answers"), ...(answers.length ? answers : [el("dd", { text: "No answers." })]));
    const social = Object.entries(p.social || {}).flatMap(([network, handle]) => {
      const url = /^https?:\/\//.test(handle) ? safeUrl(handle) : null;
      return [el("dt", { text: network }),
        el("dd", {}, url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: handle }) : handle)];
    });
    fill($("#p-social"), ...(social.length ? social : [el("dd", { text: "None given." })]));
    setText("#p-votes", votesText(p.votes));
    const reviews = $("#p-reviews");
    if (p.reviews.length) {
      fill(reviews, ...p.reviews.map((v) => el("tr", {},
        el("td", { text: v.reviewer }), el("td", {}, badge(v.vote === "approve" ? "approved" : "rejected")),
        el("td", { text: v.comment || "—" }), el("td", { text: when(v.at) }))));
    } else {
      rowMessage(reviews, 4, "No votes yet.");
    }
    const open = p.status === "pending";
    for (const control of $$("#p-actions button, #p-actions input, #p-actions select, #p-actions textarea")) {
      control.disabled = !open;
    }
  }

  async function act(request, done) {
    const p = await request();
    render(p);
    say(done(p));
  }

  const voteForm = $("#vote-form");
  voteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const choice = voteForm.elements.namedItem("vote").value;
    if (!choice) return showError("Choose approve or reject.");
    const comment = $("#vote-comment").value.trim() || null;
    return run(() => act(() => api("POST", `/applications/${id}/votes`, { json: { vote: choice, comment } }),
      (p) => `Vote recorded. ${p.status === "pending" ? votesText(p.votes) : `The application is ${p.status}.`}`), { form: voteForm });
  });

  $("#approve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const tier = $("#approve-tier").value;
    run(() => act(() => api("POST", `/applications/${id}/approve`, { json: tier ? { tier_id: Number(tier) } : {} }),
      () => "Approved: the ambassador is enrolled and their code is on its way."));
  });

  const rejectForm = $("#reject-form");
  rejectForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = $("#reject-reason").value.trim();
    run(() => act(() => api("POST", `/applications/${id}/reject`, { json: { reason } }),
      () => "Rejected: the applicant is told why."), { form: rejectForm });
  });

  const tiers = await run(loadTiers);
  if (tiers) tierOptions($("#approve-tier"), tiers);
  const p = await run(() => api("GET", `/applications/${id}`));
  if (p) render(p);
}

// --- settings ------------------------------------------------------------------------------

function getPath(object, path) {
  return path.split(".").reduce((value, key) => (value === null || value === undefined ? undefined : value[key]), object);
}

function setPath(object, path, value) {
  const keys = path.split(".");
  let target = object;
  for (const key of keys.slice(0, -1)) target = target[key] = target[key] || {};
  target[keys[keys.length - 1]] = value;
}

// A form control's value as the API wants it: decimals as strings, counts as integers.
function controlValue(control) {
  const raw = control.value.trim();
  switch (control.dataset.type) {
    case "bool": return control.checked;
    case "int": return /^-?\d+$/.test(raw) ? Number(raw) : (raw === "" ? null : raw);
    case "decimal": return raw === "" ? null : raw;
    case "lines": return raw.split("\n").map((line) => line.trim()).filter(Boolean);
    default: return raw;
  }
}

function setControl(control, value) {
  if (control.dataset.type === "bool") control.checked = Boolean(value);
  else if (control.dataset.type === "lines") control.value = (value || []).join("\n");
  else control.value = value === null || value === undefined ? "" : String(value);
}

async function pageSettings() {
  const form = $("#settings-form");
  const save = $("#settings-save");
  const controls = $$("[data-type]", form);
  const show = (settings) => { for (const c of controls) setControl(c, getPath(settings, c.name)); };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    for (const c of controls) setPath(changes, c.name, controlValue(c));
    save.disabled = true;
    const saved = await run(() => api("PATCH", "/program/settings", { json: changes }), { form });
    save.disabled = false;
    if (saved) {
      show(saved);
      say("Settings saved.");
    }
  });

  const settings = await run(() => api("GET", "/program/settings"));
  if (settings) {
    show(settings);
    save.disabled = false;
  }
}

// --- tiers ---------------------------------------------------------------------------------

function tierInput(t) {
  return {
    id: t.id, name: t.name, position: t.position, commission_rate: t.commission_rate,
    min_revenue: t.min_revenue, min_orders: t.min_orders, min_new_customers: t.min_new_customers,
    perks: t.perks,
  };
}

async function pageTiers() {
  const form = $("#tier-form");
  const preview = $("#preview");
  const controls = $$("[data-type]", form);
  let tiers = [];
  let pending = null; // { describe, save }: the change waiting for its confirmation

  function editing(tier) {
    $("#t-id").value = tier ? String(tier.id) : "";
    for (const c of controls) setControl(c, tier ? tier[c.name] : null);
    setText("#form-heading", tier ? `Edit ${tier.name}` : "New tier");
    $("#t-cancel").hidden = !tier;
    clearFieldErrors(form);
    preview.hidden = true;
    if (tier) $("#t-name").focus();
  }

  function render() {
    const tbody = $("#tier-rows");
    if (!tiers.length) return rowMessage(tbody, 8, "No tiers yet: everyone earns the program's commission.");
    return fill(tbody, ...tiers.map((t) => el("tr", {},
      el("td", { text: t.name }),
      el("td", { class: "num", text: t.position }),
      el("td", { class: "num", text: `${trimDecimal(t.commission_rate)}%` }),
      el("td", { class: "num", text: trimDecimal(t.min_revenue) }),
      el("td", { class: "num", text: t.min_orders ?? "—" }),
      el("td", { class: "num", text: t.min_new_customers ?? "—" }),
      el("td", { text: t.perks.join(", ") || "—" }),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", class: "btn", "aria-label": `Edit ${t.name}`, text: "Edit", onclick: () => editing(t) }),
        el("button", { type: "button", class: "btn btn-critical", "aria-label": `Delete ${t.name}`, text: "Delete",
          onclick: () => run(() => propose(tiers.filter((x) => x.id !== t.id).map(tierInput),
            `Delete ${t.name}`, () => api("DELETE", `/tiers/${t.id}`), `${t.name} deleted.`)) }))),
    )));
  }

  async function reload() {
    const loaded = await run(loadTiers);
    if (loaded) tiers = loaded;
    render();
  }

  // The what-if first ("with these thresholds N move up, M move down"), then the save.
  async function propose(proposed, action, save, done) {
    preview.hidden = true;
    let text;
    if (proposed.length) {
      const result = await api("POST", "/tiers/preview", { json: { tiers: proposed } });
      text = `With these tiers ${result.up} would move up, ${result.down} would move down and ${result.same} would stay where they are.`;
    } else {
      text = "With no tiers left, nobody has a tier and everyone earns the program's commission.";
    }
    pending = { save, done };
    setText("#preview-text", `${action}? ${text}`);
    $("#preview-confirm").textContent = action;
    preview.hidden = false;
    $("#preview-confirm").focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const tier = {};
    for (const c of controls) tier[c.name] = controlValue(c);
    const id = $("#t-id").value ? Number($("#t-id").value) : null;
    const proposed = tiers.filter((t) => t.id !== id).map(tierInput);
    proposed.push(id ? { ...tier, id } : tier);
    const action = id ? `Save ${tier.name || "the tier"}` : `Create ${tier.name || "the tier"}`;
    run(() => propose(proposed, action,
      () => (id ? api("PUT", `/tiers/${id}`, { json: tier }) : api("POST", "/tiers", { json: tier })),
      `${tier.name} saved.`), { form });
  });

  $("#preview-confirm").addEventListener("click", async () => {
    if (!pending) return;
    const { save, done } = pending;
    pending = null;
    const ok = await run(async () => { await save(); return true; }, { form });
    preview.hidden = true;
    if (ok) {
      say(done);
      editing(null);
      await reload();
    }
  });
  $("#preview-back").addEventListener("click", () => { pending = null; preview.hidden = true; $("#t-name").focus(); });
  $("#t-cancel").addEventListener("click", () => editing(null));

  await reload();
}

// --- Salesforce ----------------------------------------------------------------------------

async function pageSalesforce() {
  let state = null; // the last GET /salesforce
  const STATES = {
    not_connected: "Not connected", connected: "Connected",
    needs_reconnect: "Needs reconnecting", disconnected: "Disconnected",
  };
  async function reload() {
    const s = await api("GET", "/salesforce");
    state = s;
    setText("#sf-status", STATES[s.status] || s.status);
    setText("#sf-org", s.instance_url ? `${s.instance_url} (${s.org_id || "?"})` : null);
    setText("#sf-connected", s.connected_at ? when(s.connected_at) : null);
    const b = s.budget || {};
    setText("#sf-budget", b.limit ? `${b.used} of ${b.limit} daily API calls used${b.paused ? ` — paused until ${when(b.paused_until)}: ${b.pause_reason}` : ""}` : null);
    setText("#sf-message", s.enabled === false ? "Salesforce is not configured for this app (SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET)." : s.message || "");
    $("#sf-connect").hidden = s.enabled === false || s.status === "connected";
    $("#sf-connect").textContent = s.status === "needs_reconnect" ? "Connect again" : "Connect Salesforce";
    $("#sf-disconnect").hidden = s.status !== "connected" && s.status !== "needs_reconnect";
    setText("#sf-fields", s.fields ? s.fields.message : "Connect first.");
    const r = s.records || {};
    setText("#sf-last", s.last_sync_at ? when(s.last_sync_at) : "never");
    const last = s.last_sync || {};
    setText("#sf-outcome", last.status ? `${last.status}: ${last.written || 0} written, ${last.parked || 0} parked, ${last.calls || 0} API calls` : null);
    setText("#sf-synced", r.synced);
    setText("#sf-retrying", r.retry);
    setText("#sf-parked", r.parked);
    setText("#sf-error", s.last_error || "");
    const rows = (s.parked || []).map((p) => el("tr", {},
      el("td", {}, el("a", { href: pageUrl(`/ambassadors/${p.ambassador_id}`), text: p.email || `#${p.ambassador_id}` })),
      el("td", { text: p.contact_id || "—" }),
      el("td", { text: p.error_code || "—" }),
      el("td", { text: [p.message, p.note].filter(Boolean).join(" — ") || "—" })));
    if (rows.length) fill($("#sf-parked-rows"), ...rows);
    else rowMessage($("#sf-parked-rows"), 4, "Nothing parked.");
    const matches = (s.matches || []).map((m) => el("tr", {},
      el("td", {}, el("a", { href: pageUrl(`/ambassadors/${m.ambassador_id}`), text: m.email || `#${m.ambassador_id}` })),
      el("td", { text: m.contact_id || "—" }),
      el("td", { text: m.note || "—" })));
    if (matches.length) fill($("#sf-match-rows"), ...matches);
    else rowMessage($("#sf-match-rows"), 3, "No duplicate Contacts met so far.");
  }
  $("#sf-connect").addEventListener("click", () => run(async () => {
    const { authorize_url: url } = await api("POST", "/salesforce/connect");
    const safe = safeUrl(url);
    if (safe) window.open(safe, "_blank", "noopener");
    say("Approve access in the Salesforce tab, then come back here.");
  }));
  $("#sf-disconnect").addEventListener("click", () => run(async () => {
    await api("POST", "/salesforce/disconnect");
    say("Disconnected.");
    await reload();
  }));
  $("#sf-check").addEventListener("click", () => run(async () => {
    const f = await api("POST", "/salesforce/fields/check");
    say(f.message);
    await reload();
  }));
  $("#sf-provision").addEventListener("click", () => run(async () => {
    const { deploy_id: id } = await api("POST", "/salesforce/provision");
    say("Creating the fields in Salesforce…");
    for (let i = 0; i < 60; i += 1) {
      const d = await api("GET", `/salesforce/provision/${encodeURIComponent(id)}`);
      if (d.done) {
        say(d.success ? "Fields created." : `The deploy failed: ${d.error || "see Salesforce's deployment status"}`);
        break;
      }
      await new Promise((resolve) => { setTimeout(resolve, 2000); });
    }
    await reload();
  }));
  // The sync runs in the background: follow it live until its outcome is recorded.
  $("#sf-sync").addEventListener("click", () => run(async () => {
    const before = state ? state.last_sync_at : null;
    const button = $("#sf-sync");
    button.disabled = true;
    try {
      await api("POST", "/salesforce/sync");
      say("Sync queued…");
      for (let i = 0; i < 120; i += 1) {
        await reload();
        const r = state.records || {};
        if (state.last_sync_at && state.last_sync_at !== before) {
          const last = state.last_sync || {};
          say(`Sync finished (${last.status || "done"}): ${last.written || 0} written, ${last.parked || 0} parked.`);
          return;
        }
        say(`Syncing… ${r.synced || 0} ambassadors synced so far, ${r.retry || 0} waiting for a retry.`);
        await sleep(i < 10 ? 1000 : 3000);
      }
      say("The sync goes on in the background; this page shows its outcome when you come back.");
    } finally {
      button.disabled = false;
    }
  }));
  $("#sf-retry").addEventListener("click", () => run(async () => {
    const { retried } = await api("POST", "/salesforce/retry");
    say(`${retried} record(s) will be tried again.`);
    await reload();
  }));
  await reload();
}

// --- payouts -------------------------------------------------------------------------------

const FORMS = {
  cash: "Cash", store_credit: "Store credit", gift_card: "Gift card",
  discount_code: "Discount code", free_product: "Free product", points: "Points",
};

function byForm(values) {
  const parts = Object.entries(values || {}).map(([form, amount]) => `${FORMS[form] || form} ${amount}`);
  return parts.length ? parts.join(", ") : "nothing";
}

// A CSV from the API (it needs the session token, so no plain link): fetched, then saved.
async function download(path, name) {
  const token = await sessionToken(false);
  const response = await fetch(API + path, { headers: { Authorization: `Bearer ${token}` }, credentials: "omit" });
  if (!response.ok) {
    let message = `The export failed (HTTP ${response.status}).`;
    try { message = (await response.json()).error.message || message; } catch (_) { /* keep */ }
    throw new ApiError(response.status, "export_failed", message);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}

async function pagePayouts() {
  const ambassadorLink = (id) => el("a", { href: pageUrl(`/ambassadors/${id}`), text: `#${id}` });
  async function reload() {
    const b = await api("GET", "/payouts/budget");
    setText("#po-hold", `${b.pending_in_hold} ${b.currency}`);
    setText("#po-payable", byForm(b.payable_not_in_payouts));
    setText("#po-owed", byForm(b.owed_in_payouts));
    setText("#po-delivered", byForm(b.delivered));
    setText("#po-awaiting", b.awaiting_approval);
    setText("#po-failed", b.failed);

    const failed = (await api("GET", "/payouts?state=failed")).items;
    if (failed.length) {
      fill($("#po-failed-rows"), ...failed.map((p) => el("tr", {},
        el("td", { text: `#${p.id}` }),
        el("td", {}, ambassadorLink(p.ambassador_id)),
        el("td", { text: FORMS[p.form] || p.form }),
        el("td", { text: `${p.amount} ${p.currency}` }),
        el("td", { text: `${p.error_code || ""}: ${p.error || ""}` }),
        el("td", {},
          el("button", { type: "button", class: "btn", text: "Replay",
            onclick: () => run(async () => {
              const after = await api("POST", `/payouts/${p.id}/replay`);
              say(`Payout #${p.id} is ${after.state}.`);
              await reload();
            }) }),
          " ",
          el("button", { type: "button", class: "btn btn-plain", text: "Release",
            onclick: () => run(async () => {
              await api("POST", `/payouts/${p.id}/cancel`, { json: { reason: "released by the merchant" } });
              say(`Payout #${p.id} released: the amount is back in the balance.`);
              await reload();
            }) })))));
    } else {
      rowMessage($("#po-failed-rows"), 6, "No failed payouts.");
    }

    const batches = (await api("GET", "/payouts/batches")).items;
    if (batches.length) {
      fill($("#po-batch-rows"), ...batches.map((batch) => {
        const totals = Object.entries(batch.totals).map(([form, t]) => `${FORMS[form] || form}: ${t.count} (${t.amount} in all)`);
        const states = Object.entries(batch.states).map(([state, n]) => `${n} ${state.replaceAll("_", " ")}`);
        const cash = Boolean(batch.totals.cash);
        const actions = [];
        if (batch.states.awaiting_approval) {
          actions.push(el("button", { type: "button", class: "btn btn-primary", text: "Approve",
            onclick: () => run(async () => {
              await api("POST", `/payouts/batches/${batch.id}/approve`);
              say(`Batch #${batch.id} approved.`);
              await reload();
            }) }));
        }
        if (cash && batch.states.approved) {
          for (const [format, label] of [["paypal", "PayPal file"], ["bank", "Bank sheet"]]) {
            actions.push(el("button", { type: "button", class: "btn", text: label,
              onclick: () => run(async () => {
                await download(`/payouts/batches/${batch.id}/export?format=${format}`, `payouts-${batch.id}-${format}.csv`);
                await reload();
              }) }));
          }
          if (batch.exported_at) {
            actions.push(el("button", { type: "button", class: "btn", text: "Mark paid",
              onclick: () => run(async () => {
                const { fulfilled } = await api("POST", `/payouts/batches/${batch.id}/paid`);
                say(`${fulfilled} cash payout(s) marked paid.`);
                await reload();
              }) }));
          }
        }
        return el("tr", {},
          el("td", { text: `#${batch.id} (${batch.period})` }),
          el("td", { text: when(batch.created_at) }),
          el("td", { text: totals.join("; ") || "no payouts" }),
          el("td", { text: states.join(", ") || "—" }),
          el("td", {}, ...actions.flatMap((a) => [a, " "])));
      }));
    } else {
      rowMessage($("#po-batch-rows"), 5, "No payout runs yet.");
    }

    const recent = (await api("GET", "/payouts")).items;
    if (recent.length) {
      fill($("#po-rows"), ...recent.map((p) => el("tr", {},
        el("td", { text: `#${p.id}` }),
        el("td", {}, ambassadorLink(p.ambassador_id)),
        el("td", { text: FORMS[p.form] || p.form }),
        el("td", { text: p.amount }),
        el("td", { text: p.value }),
        el("td", {}, badge(p.state)),
        el("td", { text: when(p.updated_at) }))));
    } else {
      rowMessage($("#po-rows"), 7, "No payouts yet.");
    }
  }
  $("#po-run").addEventListener("click", () => run(async () => {
    const report = await api("POST", "/payouts/runs", { json: {} });
    say(`${report.created} payout(s) created (${report.total} in all); ${report.below_minimum} below the minimum.`);
    await reload();
  }));
  await reload();
}

// --- engagement (server-rendered figures; the chart and the actions here) --------------------

async function pageEngagement() {
  const BANDS = ["not engaged", "marginal", "engaged"];
  const reload = () => window.location.reload();
  for (const button of $$("[data-approve]")) {
    button.addEventListener("click", () => run(async () => {
      await api("POST", `/submissions/${button.dataset.approve}/approve`, { json: {} });
      say("Approved.");
      reload();
    }));
  }
  for (const button of $$("[data-reject]")) {
    button.addEventListener("click", () => run(async () => {
      const id = button.dataset.reject;
      const reason = $(`[data-reason="${id}"]`).value.trim();
      if (!reason) throw new ApiError(422, "reason", "Say why the post is rejected (the ambassador sees it).");
      await api("POST", `/submissions/${id}/reject`, { json: { reason } });
      say("Rejected.");
      reload();
    }));
  }
  for (const button of $$("[data-close]")) {
    button.addEventListener("click", () => run(async () => {
      await api("POST", `/challenges/${button.dataset.close}/close`, { json: {} });
      say("Closed: prizes are in the winners' ledgers.");
      reload();
    }));
  }
  for (const button of $$("[data-standings]")) {
    button.addEventListener("click", () => run(() => showStandings(button.dataset.standings)));
  }
  const form = $("#challenge-form");
  const month = $("#ch-month");
  if (!month.value) month.value = new Date().toISOString().slice(0, 7);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const created = await api("POST", "/challenges", { json: {
        preset: "monthly", month: month.value, metric: $("#ch-metric").value,
        mode: "ranking", prizes: [{ rank: 1, amount: $("#ch-prize").value.trim() }],
      } });
      say(`Created: ${created.name}.`);
      reload();
    }, { form });
  });
  // The chart last: the forms and buttons above work while the figures load (a click before
  // they were bound submitted the form as a plain GET of this page).
  const summary = await api("GET", "/engagement");
  const days = summary.over_time || [];
  const last = days[days.length - 1];
  showChart("bands", {
    type: "line",
    data: {
      labels: days.map((d) => d.day.slice(5)),
      datasets: BANDS.map((band, i) => ({
        label: band, data: days.map((d) => Number(d.shares[band])),
        borderColor: CHART_COLOURS[[2, 3, 1][i]], backgroundColor: CHART_COLOURS[[2, 3, 1][i]], pointRadius: 3,
      })),
    },
    options: { scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "% of ambassadors" } } } },
  }, last
    ? `On ${last.day}: ${BANDS.map((b) => `${last.shares[b]} % ${b}`).join(", ")} (${days.length} days shown).`
    : "No daily snapshot yet: scores are computed every hour.",
  days.map((d) => [d.day, ...BANDS.map((b) => `${d.shares[b]} %`)]));
}

// A challenge's standings: the top of the board as a horizontal bar chart, every row (up to the
// API's 100) in its table.
const STANDINGS_TOP = 10;

// "733.5" → "733.50": an exact decimal string shown with cents, without going through a float.
function cents(value) {
  const [whole, fraction = ""] = String(value).split(".");
  return fraction.length >= 2 ? String(value) : `${whole}.${fraction.padEnd(2, "0")}`;
}

async function showStandings(id) {
  const board = await api("GET", `/challenges/${id}/leaderboard`);
  const c = board.challenge;
  $("#standings").hidden = false;
  setText("#standings-heading", `Standings: ${c.name}${board.final ? " (final)" : ""}`);
  const metric = c.metric.replaceAll("_", " ");
  const revenue = c.metric === "revenue";
  const result = (row) => (revenue ? money(cents(row.value), c.currency) : String(row.value));
  const name = (row) => row.name || `#${row.ambassador_id}`;
  const items = board.items;
  const top = items.slice(0, STANDINGS_TOP);
  showChart("standings", {
    type: "bar",
    data: {
      labels: top.map((row) => `${row.rank}. ${name(row)}`),
      datasets: [{ label: revenue ? `Revenue (${c.currency})` : metric, data: top.map((row) => Number(row.value)), backgroundColor: CHART_COLOURS[0] }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: revenue ? undefined : 0 }, title: { display: true, text: revenue ? `Revenue (${c.currency})` : metric } } },
    },
  }, items.length
    ? `${c.name}${board.final ? ", final" : ", so far"}: ${top.slice(0, 3).map((row) => `${row.rank}. ${name(row)} ${result(row)}`).join(", ")}${items.length > 3 ? ` and ${items.length - 3} more` : ""} (by ${metric}${items.length > STANDINGS_TOP ? `; the chart shows the top ${STANDINGS_TOP}` : ""}).`
    : `${c.name}: nobody has joined yet.`,
  items.map((row) => [String(row.rank),
    el("a", { href: pageUrl(`/ambassadors/${row.ambassador_id}`), text: name(row) }),
    result(row), row.prize ? money(row.prize, c.currency) : "—"]));
  if (!items.length) rowMessage($("#standings-rows"), 4, "Nobody has joined yet.");
}

// --- resources ---------------------------------------------------------------------------------

const RESOURCE_KINDS = { flyer: "Flyer", graphic: "Graphic", post: "Pre-written post" };
// The API's refusals of an upload, by code, and the form field each belongs next to.
const RESOURCE_FIELDS = {
  invalid_file: "file", too_large: "file", missing_file: "file", request_entity_too_large: "file",
  invalid_title: "title", invalid_body: "body", invalid_kind: "kind",
};

function fileSize(bytes) {
  if (!bytes) return "—";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

// Asks in a modal <dialog> (keyboard: Tab between the buttons, Escape keeps); true to go on.
function confirmDialog(dialog, text) {
  setText("#res-confirm-text", text);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    dialog.showModal();
  });
}

async function pageResources() {
  const form = $("#res-form");
  const kind = $("#res-kind");
  const tbody = $("#res-rows");
  const dialog = $("#res-confirm");
  const maxUpload = Number(cfg.maxUpload || 0);
  const showKind = () => {
    const post = kind.value === "post";
    $("#res-file-field").hidden = post;
    $("#res-body-field").hidden = !post;
  };
  kind.addEventListener("change", showKind);
  showKind();

  async function reload() {
    let items;
    try {
      ({ items } = await api("GET", "/resources"));
    } catch (error) {
      rowMessage(tbody, 7, "Could not load the library.");
      throw error;
    }
    if (!items.length) {
      rowMessage(tbody, 7, "No resources yet: add a flyer, a graphic or a pre-written post below.");
      return;
    }
    fill(tbody, ...items.map((r) => el("tr", { "data-resource": r.id },
      el("td", { text: RESOURCE_KINDS[r.kind] || r.kind }),
      el("td", { text: r.title }),
      el("td", { text: r.filename || (r.body ? `${r.body.slice(0, 80)}${r.body.length > 80 ? "…" : ""}` : "—") }),
      el("td", { class: "num", text: fileSize(r.size) }),
      el("td", { text: when(r.created_at) }),
      el("td", { class: "num", text: r.downloads }),
      el("td", {},
        r.download_url ? el("button", { type: "button", class: "btn", text: "Download", "aria-label": `Download ${r.title}`,
          onclick: () => run(() => download(`/resources/${r.id}/file`, r.filename || "resource")) }) : null,
        " ",
        el("button", { type: "button", class: "btn btn-plain", text: "Delete", "aria-label": `Delete ${r.title}`,
          onclick: () => run(async () => {
            if (!await confirmDialog(dialog, `“${r.title}” leaves the library and your ambassadors' portal. This cannot be undone.`)) return;
            await api("DELETE", `/resources/${r.id}`);
            await reload();
            say(`Deleted: ${r.title}.`);
          }) })))));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const title = $("#res-title").value.trim();
      let created;
      try {
        if (kind.value === "post") {
          created = await api("POST", "/resources", { json: { kind: "post", title, body: $("#res-body").value } });
        } else {
          const file = $("#res-file").files[0];
          if (!file) throw new ApiError(422, "missing_file", "Choose the file to upload.");
          // Said before sending 10 MiB for nothing; the API checks again (and the bytes' type).
          if (maxUpload && file.size > maxUpload) {
            throw new ApiError(413, "too_large", `The file is ${fileSize(file.size)}: files are limited to ${fileSize(maxUpload)}.`);
          }
          const data = new FormData();
          data.append("kind", kind.value);
          data.append("title", title);
          data.append("file", file, file.name);
          created = await api("POST", "/resources", { body: data });
        }
      } catch (error) {
        const name = error instanceof ApiError ? RESOURCE_FIELDS[error.code] : null;
        if (!name) throw error;
        const target = $(`[data-error-for="${name}"]`, form);
        target.textContent = error.message;
        const input = form.elements.namedItem(name);
        input.setAttribute("aria-invalid", "true");
        input.focus();
        showError(`Nothing was added. ${error.message}`);
        return;
      }
      form.reset();
      showKind();
      await reload();
      say(`Added: ${created.title}.`);
    }, { form });
  });
  await reload();
}

// --- return on influence -------------------------------------------------------------------------

async function pageRoi() {
  const form = $("#roi-form");
  const ratio = (value) => (value === null || value === undefined ? "—" : `${value}×`);
  let loaded = false;
  async function load() {
    const query = new URLSearchParams();
    for (const name of ["from", "to"]) {
      const value = $(`#roi-${name}`).value;
      if (value) query.set(name, value);
    }
    let r;
    try {
      r = await api("GET", `/roi?${query}`);
    } catch (error) {
      if (!loaded) { // a refused range keeps the figures shown; a first load says it failed
        setText("#roi-summary", "The figures could not be loaded.");
        for (const id of ["#roi-rows", "#roi-tier-rows", "#roi-challenge-rows"]) {
          rowMessage($(id), $$("th", $(id).closest("table")).length, "Could not load.");
        }
      }
      throw error;
    }
    loaded = true;
    const cur = r.currency;
    $("#roi-from").value = r.from;
    $("#roi-to").value = r.to;
    const t = r.total;
    setText("#roi-revenue", money(t.business.attributed_revenue, cur));
    setText("#roi-orders", t.business.attributed_orders);
    setText("#roi-new", t.business.new_customers);
    setText("#roi-average", t.business.average_order === null ? null : money(t.business.average_order, cur));
    setText("#roi-share", t.marketing.share_of_store_revenue === null ? null : `${t.marketing.share_of_store_revenue} %`);
    setText("#roi-ambassadors", t.marketing.ambassadors_active);
    setText("#roi-content", t.content.approved);
    setText("#roi-cost", `${money(t.cost.total, cur)} (commissions ${money(t.cost.commissions, cur)}, prizes ${money(t.cost.bonuses, cur)})`);
    setText("#roi-ratio", t.return_per_unit_cost === null ? "— (no cost yet)" : `${ratio(t.return_per_unit_cost)}: each ${cur} spent brought ${t.return_per_unit_cost} ${cur} more than it cost`);

    const months = r.months;
    const active = months.filter((m) => m.business.attributed_orders || Number(m.cost.total));
    const best = active.reduce((b, m) => (!b || Number(m.business.attributed_revenue) > Number(b.business.attributed_revenue) ? m : b), null);
    showChart("roi", {
      type: "bar",
      data: {
        labels: months.map((m) => m.month),
        datasets: [
          { label: `Attributed revenue (${cur})`, data: months.map((m) => Number(m.business.attributed_revenue)), backgroundColor: CHART_COLOURS[0] },
          { label: `Program cost (${cur})`, data: months.map((m) => Number(m.cost.total)), backgroundColor: CHART_COLOURS[2] },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, title: { display: true, text: cur } } },
      },
    }, best
      ? `From ${r.from} to ${r.to}: ${money(t.business.attributed_revenue, cur)} attributed revenue against ${money(t.cost.total, cur)} program cost (return ${ratio(t.return_per_unit_cost)}); the best month was ${best.month} with ${money(best.business.attributed_revenue, cur)}.`
      : `From ${r.from} to ${r.to}: no attributed orders and no cost yet.`,
    (best ? months : []).map((m) => [m.month, money(m.business.attributed_revenue, cur), String(m.business.attributed_orders), money(m.cost.total, cur), ratio(m.return_per_unit_cost)]));

    if (r.tiers.length) {
      fill($("#roi-tier-rows"), ...r.tiers.map((x) => el("tr", {},
        el("td", { text: x.tier === "none" ? "No tier" : x.tier }),
        el("td", { class: "num", text: money(x.business.attributed_revenue, cur) }),
        el("td", { class: "num", text: x.business.attributed_orders }),
        el("td", { class: "num", text: x.marketing.ambassadors_active }),
        el("td", { class: "num", text: money(x.cost.total, cur) }),
        el("td", { class: "num", text: ratio(x.return_per_unit_cost) }))));
    } else {
      rowMessage($("#roi-tier-rows"), 6, "No attributed orders in these months.");
    }
    if (r.challenges.length) {
      fill($("#roi-challenge-rows"), ...r.challenges.map((x) => el("tr", {},
        el("td", { text: x.name }),
        el("td", { text: x.metric.replaceAll("_", " ") }),
        el("td", { text: `${day(x.starts_at)} – ${day(x.ends_at)}` }),
        el("td", { class: "num", text: x.participants }),
        el("td", { class: "num", text: money(x.participants_revenue, cur) }),
        el("td", { class: "num", text: money(x.prizes, cur) }))));
    } else {
      rowMessage($("#roi-challenge-rows"), 6, "No challenge in these months.");
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(load, { form });
  });
  await load();
}

// --- start ---------------------------------------------------------------------------------

const PAGES = {
  dashboard: pageDashboard,
  ambassadors: cfg.id ? pageAmbassador : pageAmbassadors,
  candidates: pageCandidates,
  applications: cfg.id ? pageApplication : pageApplications,
  settings: pageSettings,
  tiers: pageTiers,
  salesforce: pageSalesforce,
  payouts: pagePayouts,
  engagement: pageEngagement,
  resources: pageResources,
  roi: pageRoi,
  health: pageHealth,
};

if (root) {
  // The id token in the address was for this load only (it expires in a minute): drop it, so a
  // reload bounces for a fresh one instead of failing on a stale one.
  const url = new URL(window.location.href);
  if (url.searchParams.has("id_token")) {
    url.searchParams.delete("id_token");
    window.history.replaceState(null, "", url);
  }
  const start = PAGES[cfg.page];
  if (start) run(start);
}

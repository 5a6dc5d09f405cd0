// orderwatch seller's console. Plain browser JavaScript, no build step, nothing from elsewhere.
// It reads the worker's live feed (GET /events, server-sent events) and its state queries
// (GET /orders/{id}, GET /merchants/{id}). Every piece of data is put in the page as text.
"use strict";

(function () {
  const SEVERITIES = ["critical", "warning", "info"];
  const MAX_BREACHES = 50;
  const MAX_PER_SEVERITY = 100;
  const MAX_DEAD_LETTERS = 10;
  const TOKEN_KEY = "orderwatch.token";
  // Breach reasons of the order scope and the deadline each one answers.
  const REASON_DEADLINE = {
    FULFILLMENT_OVERDUE: "fulfillment",
    CONFIRMATION_OVERDUE: "confirmed_fulfillment",
    DELIVERY_OVERDUE: "delivery",
    COMPLAINT_RESPONSE_OVERDUE: "complaint_response",
  };
  // Warnings ahead of a deadline, and the deadline whose breach replaces them (with its overdue
  // recommendation); every COMPLAINT_<REASON> is replaced by its complaint's response breach.
  const WARNS_OF = {
    FULFILLMENT_AT_RISK: "fulfillment",
    STOCKOUT_RISK: "fulfillment",
    TRACKING_NOT_SCANNED: "confirmed_fulfillment",
  };
  const ENDINGS = new Set(["delivered", "refunded", "cancelled"]);

  const state = {
    recommendations: new Map(), // recommendation_id -> output
    breaches: new Map(), // breach_id -> output
    resolutions: new Map(), // breach_id -> deadline.resolved output
    endedOrders: new Map(), // order_id -> resolution (delivered, refunded, cancelled)
    resolvedDeadlines: new Set(), // order_id + "/" + deadline (+ "/" + complaint_id)
    breachedDeadlines: new Set(), // order_id + "/" + deadline
    deadLetters: [],
    deadLetterCount: 0,
    merchants: new Set(),
    streamClock: null, // the latest processor time an output carries (ms)
    source: null,
    renderQueued: false,
  };

  // -- small helpers -----------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function authHeaders() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  function ms(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }

  const localFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

  // A time in the viewer's zone, UTC on hover.
  function timeEl(iso) {
    if (!iso) return el("span", { class: "muted", text: "—" });
    const t = ms(iso);
    if (t === null) return el("span", { text: iso });
    return el("time", {
      datetime: iso,
      title: new Date(t).toISOString().replace(".000Z", "Z") + " (UTC)",
      text: localFormat.format(new Date(t)),
    });
  }

  function duration(deltaMs) {
    const abs = Math.abs(deltaMs);
    const s = Math.floor(abs / 1000);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (d > 0) return `${d}d ${h}h ${m}m`;
    if (h > 0) return `${h}h ${m}m ${sec}s`;
    return `${m}m ${sec}s`;
  }

  // What countdowns count from: now, or the stream's clock when it is far from now (a worker on
  // event time playing recorded or compressed history).
  function onStreamClock() {
    return state.streamClock !== null && Math.abs(Date.now() - state.streamClock) > 3600 * 1000;
  }

  function reference() {
    return onStreamClock() ? state.streamClock : Date.now();
  }

  function countdownEl(respondBy) {
    const node = el("span", { class: "countdown", dataset: { due: respondBy } });
    updateCountdown(node, reference());
    return node;
  }

  function updateCountdown(node, ref) {
    const due = ms(node.dataset.due);
    if (due === null) return;
    const left = due - ref;
    node.textContent = left >= 0 ? `respond within ${duration(left)}` : `overdue by ${duration(left)}`;
    node.classList.toggle("passed", left < 0);
    node.classList.toggle("soon", left >= 0 && left < 6 * 3600 * 1000);
    node.title = "respond by " + new Date(due).toISOString() + " (UTC)";
  }

  function tick() {
    const ref = reference();
    for (const node of document.querySelectorAll(".countdown")) updateCountdown(node, ref);
    const note = $("clock-note");
    if (onStreamClock()) {
      note.hidden = false;
      note.replaceChildren(
        "Countdowns count from the stream's clock, ",
        timeEl(new Date(state.streamClock).toISOString()),
        ", not from now: this worker runs on event time (ORDERWATCH_CLOCK=event) and its latest " +
          "decision is far from the present.",
      );
    } else {
      note.hidden = true;
    }
  }

  function orderButton(orderId) {
    return el("button", {
      class: "link",
      type: "button",
      text: orderId,
      title: "Show this order's timeline",
      onclick: () => {
        $("lookup-input").value = orderId;
        lookup(orderId);
        $("lookup-panel").scrollIntoView({ behavior: "smooth", block: "start" });
      },
    });
  }

  function merchantButton(merchantId) {
    return el("button", {
      class: "link",
      type: "button",
      text: merchantId,
      title: "Show this store's health",
      onclick: () => {
        $("merchant-input").value = merchantId;
        health(merchantId);
      },
    });
  }

  function label(code) {
    return String(code || "").replace(/_/g, " ").toLowerCase();
  }

  // -- the feed ----------------------------------------------------------------------------

  function setStatus(kind, text) {
    const node = $("feed-status");
    node.className = "status status-" + kind;
    node.textContent = text;
  }

  function connect() {
    if (state.source) state.source.close();
    const t = token();
    const url = "/events" + (t ? "?access_token=" + encodeURIComponent(t) : "");
    const source = new EventSource(url);
    state.source = source;
    setStatus("connecting", "Connecting to the live feed…");
    source.onopen = () => {
      setStatus("live", "Live: updates as the worker decides");
      $("token-panel").hidden = true;
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) diagnose();
      else setStatus("connecting", "Feed interrupted: reconnecting…");
    };
    for (const type of ["deadline.breached", "deadline.resolved", "recommendation.issued", "event.rejected"]) {
      source.addEventListener(type, (message) => {
        let output;
        try {
          output = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        receive(output);
      });
    }
  }

  // EventSource gives up without saying why: ask the worker.
  async function diagnose() {
    const t = token();
    try {
      const response = await fetch("/events?probe=1" + (t ? "&access_token=" + encodeURIComponent(t) : ""));
      if (response.status === 401) {
        askToken(t ? "That token was refused. Check ORDERWATCH_WEB_TOKEN on the worker." : "");
        setStatus("down", "Not connected: this worker needs its token");
        return;
      }
      setStatus("down", `The feed stopped (HTTP ${response.status}); retrying…`);
    } catch (error) {
      setStatus("down", "Cannot reach the worker: is it running? Retrying…");
    }
    setTimeout(connect, 5000);
  }

  function askToken(message) {
    $("token-panel").hidden = false;
    const error = $("token-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("token-input").focus();
  }

  function receive(output) {
    const at = ms(output.detected_at || output.issued_at || "");
    if (at !== null && (state.streamClock === null || at > state.streamClock)) state.streamClock = at;
    if (output.merchant_id) state.merchants.add(output.merchant_id);
    switch (output.type) {
      case "deadline.breached":
        state.breaches.set(output.breach_id, output);
        state.breachedDeadlines.add(deadlineKey(output.order_id, output.deadline));
        break;
      case "deadline.resolved":
        state.resolutions.set(output.breach_id, output);
        state.resolvedDeadlines.add(deadlineKey(output.order_id, output.deadline, output.complaint_id));
        if (ENDINGS.has(output.resolution)) state.endedOrders.set(output.order_id, output.resolution);
        break;
      case "recommendation.issued":
        state.recommendations.set(output.recommendation_id, output);
        break;
      case "event.rejected":
        state.deadLetterCount += 1;
        state.deadLetters.unshift(output);
        state.deadLetters.length = Math.min(state.deadLetters.length, MAX_DEAD_LETTERS);
        break;
      default:
        return;
    }
    scheduleRender();
  }

  function deadlineKey(orderId, deadline, complaintId) {
    return [orderId, deadline, complaintId || ""].join("/");
  }

  // Many outputs arrive at once (the kept backlog): draw once per frame.
  function scheduleRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    setTimeout(() => {
      state.renderQueued = false;
      render();
    }, 100);
  }

  function render() {
    renderRecommendations();
    renderBreaches();
    renderDeadLetters();
    renderMerchants();
    tick();
  }

  // -- open recommendations ----------------------------------------------------------------

  // An order's recommendation is open until the order ends or its deadline is resolved; one that
  // warns ahead of a deadline (at risk, a complaint to answer) until its respond-by passes: by then
  // the deadline was met, or its breach came with an overdue recommendation, shown instead. One
  // issued with its window already missed keeps its when-missed actions open.
  function isOpen(rec, ref) {
    if (rec.scope !== "order") return true;
    if (state.endedOrders.has(rec.order_id)) return false;
    const deadline = REASON_DEADLINE[rec.reason];
    if (!deadline) {
      const warned = WARNS_OF[rec.reason] || (rec.reason.startsWith("COMPLAINT_") ? "complaint_response" : null);
      if (warned && state.breachedDeadlines.has(deadlineKey(rec.order_id, warned))) return false;
      const due = ms(rec.respond_by || "");
      return rec.respond_by_passed === true || due === null || due > ref;
    }
    const complaint = rec.evidence && rec.evidence.complaint_id;
    return !state.resolvedDeadlines.has(deadlineKey(rec.order_id, deadline, complaint));
  }

  function fill(box, ...children) {
    box.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function renderRecommendations() {
    const ref = reference();
    const open = [...state.recommendations.values()].filter((rec) => isOpen(rec, ref));
    $("recommendations-count").textContent = open.length ? `(${open.length})` : "";
    const box = $("recommendations");
    if (!open.length) {
      fill(box, 
        el("p", {
          class: "empty",
          text:
            "No open recommendations — nothing needs your action right now. New ones appear " +
            "here as the worker decides them.",
        }),
      );
      return;
    }
    const groups = [];
    for (const severity of SEVERITIES) {
      const recs = open
        .filter((r) => (SEVERITIES.includes(r.severity) ? r.severity : "info") === severity)
        .sort((a, b) => (ms(a.respond_by) ?? Infinity) - (ms(b.respond_by) ?? Infinity));
      if (!recs.length) continue;
      const shown = recs.slice(0, MAX_PER_SEVERITY);
      groups.push(
        el(
          "div",
          { class: "group", dataset: { severity } },
          el("h3", {}, el("span", { class: "badge sev-" + severity, text: severity }), `${recs.length} open`),
          shown.map(recommendationEl),
          recs.length > shown.length
            ? el("p", { class: "empty", text: `and ${recs.length - shown.length} more, with later respond-by times` })
            : null,
        ),
      );
    }
    fill(box, groups);
  }

  function recommendationEl(rec) {
    const subject =
      rec.scope === "order"
        ? ["order ", orderButton(rec.order_id)]
        : [rec.scope + " ", el("span", { class: "mono", text: rec.subject })];
    return el(
      "div",
      { class: "rec sev-" + rec.severity, dataset: { id: rec.recommendation_id, reason: rec.reason } },
      el(
        "div",
        { class: "head" },
        el("span", {}, el("span", { class: "reason", text: label(rec.reason) }), " · ", subject),
        rec.respond_by_passed
          ? el("span", { class: "countdown passed", title: "respond by " + rec.respond_by, text: "window missed: act now" })
          : rec.respond_by
          ? countdownEl(rec.respond_by)
          : rec.severity === "critical"
            ? el("span", { class: "countdown passed", text: "deadline missed: act now" })
            : el("span", { class: "meta", text: "no respond-by" }),
      ),
      rec.consequence ? el("div", { text: rec.consequence }) : null,
      el(
        "ul",
        {},
        (rec.actions || []).map((a) => el("li", {}, el("strong", { text: label(a.code) }), ": ", a.detail || "")),
      ),
      el(
        "div",
        { class: "meta" },
        "store ",
        merchantButton(rec.merchant_id),
        " · issued ",
        timeEl(rec.issued_at),
        rec.respond_by ? [" · respond by ", timeEl(rec.respond_by)] : null,
      ),
    );
  }

  // -- breaches ----------------------------------------------------------------------------

  function renderBreaches() {
    const breaches = [...state.breaches.values()].sort(
      (a, b) => (ms(b.detected_at) ?? 0) - (ms(a.detected_at) ?? 0) || (ms(b.due_at) ?? 0) - (ms(a.due_at) ?? 0),
    );
    $("breaches-count").textContent = breaches.length ? `(${breaches.length})` : "";
    const box = $("breaches");
    if (!breaches.length) {
      fill(box, 
        el("p", {
          class: "empty",
          text: "No breaches — no deadline in the feed was missed. A missed deadline shows up here as soon as the worker detects it.",
        }),
      );
      return;
    }
    const rows = breaches.slice(0, MAX_BREACHES).map((b) => {
      const resolution = state.resolutions.get(b.breach_id);
      const status = resolution
        ? el(
            "span",
            { class: "badge resolved", title: "resolved " + (resolution.resolved_at || "") },
            "resolved: " + label(resolution.resolution),
          )
        : el("span", { class: "badge open", text: "open" });
      return el(
        "tr",
        { dataset: { breach: b.breach_id, order: b.order_id } },
        el("td", {}, timeEl(b.detected_at)),
        el("td", {}, orderButton(b.order_id)),
        el("td", {}, merchantButton(b.merchant_id)),
        el("td", { title: b.consequence || "" }, label(b.deadline), el("div", { class: "meta" }, "due ", timeEl(b.due_at))),
        el("td", {}, status, resolution ? el("div", { class: "meta" }, timeEl(resolution.resolved_at)) : null),
      );
    });
    fill(box, 
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ["Detected", "Order", "Store", "Deadline", "Status"].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows),
      ),
      breaches.length > MAX_BREACHES ? el("p", { class: "empty", text: `${breaches.length - MAX_BREACHES} older breaches not shown` }) : null,
    );
  }

  // -- dead letters ------------------------------------------------------------------------

  function renderDeadLetters() {
    $("dead-letters-count").textContent = state.deadLetterCount ? `(${state.deadLetterCount})` : "";
    const box = $("dead-letters");
    if (!state.deadLetters.length) {
      fill(box, el("p", { class: "empty", text: "No rejected input — every message so far could be used." }));
      return;
    }
    fill(box, 
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ["Rejected", "Reason", "What to fix", "Where"].map((h) => el("th", { text: h })))),
        el(
          "tbody",
          {},
          state.deadLetters.map((d) =>
            el(
              "tr",
              {},
              el("td", {}, timeEl(d.rejected_at)),
              el("td", {}, label(d.reason)),
              el("td", { text: d.error }),
              el(
                "td",
                { class: "mono" },
                sourceText(d.source),
              ),
            ),
          ),
        ),
      ),
    );
  }

  // Where a rejected message was read: topic, partition, offset (a file and line in replay).
  function sourceText(source) {
    if (!source) return "";
    if (source.topic !== undefined) return `${source.topic} partition ${source.partition}, offset ${source.offset}`;
    return `${source.file ?? "?"} line ${source.line ?? "?"}`;
  }

  function renderMerchants() {
    const list = $("merchant-list");
    const known = new Set([...list.options].map((o) => o.value));
    for (const m of [...state.merchants].sort()) {
      if (!known.has(m)) list.append(el("option", { value: m }));
    }
  }

  // -- queries -----------------------------------------------------------------------------

  // GET a state query; an answer the page can show either way.
  async function query(path) {
    let response;
    try {
      response = await fetch(path, { headers: { Accept: "application/json", ...authHeaders() } });
    } catch (error) {
      return { problem: "Cannot reach the worker. Is it running? Reload this page once it is back." };
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (response.ok && body) return { body };
    const said = body && body.error ? ` (${body.error})` : "";
    if (response.status === 401) {
      askToken(token() ? "That token was refused. Check ORDERWATCH_WEB_TOKEN on the worker." : "");
      return { problem: "This worker needs its access token: enter it above, then try again." };
    }
    if (response.status === 503) {
      const retry = response.headers.get("Retry-After");
      return {
        problem:
          "The worker that holds this is restoring its state or the group is rebalancing" +
          said +
          `. Try again ${retry ? "in " + retry + " s" : "in a few seconds"}.`,
        retry: retry ? Number(retry) : 5,
      };
    }
    return { status: response.status, problem: `The worker answered HTTP ${response.status}${said}.` };
  }

  function problemEl(title, text, retry) {
    return el(
      "div",
      { class: "error", role: "alert" },
      el("strong", { text: title }),
      text,
      retry ? [" ", el("button", { type: "button", text: "Try again", onclick: retry })] : null,
    );
  }

  async function lookup(orderId) {
    const box = $("lookup-result");
    orderId = orderId.trim();
    if (!orderId) return;
    fill(box, el("p", { class: "empty", text: `Looking up ${orderId}…` }));
    const answer = await query("/orders/" + encodeURIComponent(orderId));
    if (answer.body) {
      fill(box, orderEl(answer.body));
      tick();
      return;
    }
    if (answer.status === 404) {
      fill(box, 
        problemEl(
          `No order ${orderId} is known.`,
          "Check the id (as in the order.placed event, e.g. o-000123). Orders are forgotten 90 days after their last event.",
        ),
      );
      return;
    }
    fill(box, problemEl(`Cannot show ${orderId}.`, answer.problem, () => lookup(orderId)));
  }

  function badgeFor(stateName) {
    const kind = { met: "state-ok", resolved: "state-ok", closed: "state-ok", breached: "state-bad", at_risk: "sev-warning" }[stateName] || "state-pending";
    return el("span", { class: "badge " + kind, text: label(stateName) });
  }

  function orderEl(order) {
    const deadlines = order.deadlines || [];
    const timeline = order.timeline || [];
    const decisions = order.decisions || [];
    return el(
      "div",
      { class: "order", dataset: { order: order.order_id } },
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "Order" }),
        el("dd", { class: "mono", text: order.order_id }),
        el("dt", { text: "Store" }),
        el("dd", {}, merchantButton(order.merchant_id)),
        el("dt", { text: "Status" }),
        el("dd", {}, badgeFor(order.status)),
        el("dt", { text: "Placed" }),
        el("dd", {}, timeEl(order.placed_at)),
        el("dt", { text: "Released" }),
        el("dd", {}, timeEl(order.released_at)),
        order.next_due ? [el("dt", { text: "Next due" }), el("dd", {}, timeEl(order.next_due))] : null,
        order.respond_by ? [el("dt", { text: "Respond by" }), el("dd", {}, timeEl(order.respond_by), " ", countdownEl(order.respond_by))] : null,
      ),
      el("h3", { text: "Deadlines" }),
      deadlines.length
        ? el(
            "table",
            { class: "deadlines" },
            el("thead", {}, el("tr", {}, ["Deadline", "Due", "State"].map((h) => el("th", { text: h })))),
            el(
              "tbody",
              {},
              deadlines.map((d) =>
                el(
                  "tr",
                  {},
                  el("td", {}, label(d.deadline), d.complaint_id ? el("span", { class: "meta mono", text: " " + d.complaint_id }) : null),
                  el("td", {}, timeEl(d.due_at)),
                  el("td", {}, badgeFor(d.state)),
                ),
              ),
            ),
          )
        : el("p", { class: "empty", text: "No deadlines: nothing is due for this order." }),
      el("h3", { text: "Timeline" }),
      timeline.length
        ? el(
            "ol",
            { class: "timeline" },
            timeline.map((t) =>
              el("li", {}, el("span", { class: "when" }, timeEl(t.at)), el("strong", { text: t.event }), t.detail ? " — " + t.detail : ""),
            ),
          )
        : el("p", { class: "empty", text: "No events recorded yet." }),
      el("h3", { text: "Decisions" }),
      decisions.length
        ? el(
            "ul",
            { class: "decisions" },
            decisions.map((d) =>
              el(
                "li",
                {},
                timeEl(d.at),
                " ",
                d.severity ? el("span", { class: "badge sev-" + d.severity, text: d.severity }) : null,
                " ",
                d.type === "deadline.breached"
                  ? el("span", {}, el("span", { class: "badge state-bad", text: "breach" }), " missed " + label(d.deadline))
                  : d.type === "deadline.resolved"
                    ? el(
                        "span",
                        {},
                        el("span", { class: "badge resolved", text: "resolved" }),
                        " " + label(d.deadline) + ": " + label(d.resolution || ""),
                      )
                    : label(d.reason || d.deadline || d.type),
                d.respond_by ? [" · respond by ", timeEl(d.respond_by)] : null,
              ),
            ),
          )
        : el("p", { class: "empty", text: "No decisions yet: no breach and no recommendation for this order." }),
    );
  }

  async function health(merchantId) {
    const box = $("health-result");
    merchantId = merchantId.trim();
    if (!merchantId) return;
    fill(box, el("p", { class: "empty", text: `Loading ${merchantId}…` }));
    const answer = await query("/merchants/" + encodeURIComponent(merchantId));
    if (answer.body) {
      fill(box, storeEl(answer.body));
      tick();
      return;
    }
    if (answer.status === 404) {
      fill(box, 
        problemEl(`No store ${merchantId} is known.`, "Check the id (the merchant_id of its orders, e.g. m-001); the list offers the stores seen in the feed."),
      );
      return;
    }
    fill(box, problemEl(`Cannot show ${merchantId}.`, answer.problem, () => health(merchantId)));
  }

  function percent(rate) {
    return typeof rate === "number" ? (rate * 100).toFixed(1).replace(/\.0$/, "") + " %" : "—";
  }

  const COMPARES = { ">=": "≥", ">": ">", "<": "<", "<=": "≤" };

  function storeEl(store) {
    const measures = store.health || [];
    const open = store.open_recommendations || [];
    const orders = store.orders_in_window ?? 0;
    const tooFew = typeof store.min_orders === "number" && orders < store.min_orders;
    return el(
      "div",
      { class: "store", dataset: { merchant: store.merchant_id } },
      el(
        "p",
        {},
        `${orders} orders placed in the last ${store.window_days ?? "?"} days`,
        store.as_of ? [" (to ", timeEl(store.as_of), ")"] : null,
        ".",
      ),
      tooFew
        ? el("p", {
            class: "note-inline",
            text:
              `Thresholds apply from ${store.min_orders} orders in the window: with ${orders}, ` +
              "no measure puts this store at risk yet.",
          })
        : null,
      measures.length
        ? el(
            "table",
            { class: "health" },
            el("thead", {}, el("tr", {}, ["Measure", "Rate", "Orders", "Threshold", ""].map((h) => el("th", { text: h })))),
            el(
              "tbody",
              {},
              measures.map((m) => {
                const over = m.at_risk || (tooFew && overThreshold(m));
                const badge = m.at_risk
                  ? el("span", { class: "badge state-bad", text: "at risk" })
                  : over
                    ? el("span", { class: "badge sev-warning", text: "over, not counted yet" })
                    : el("span", { class: "badge state-ok", text: "ok" });
                return el(
                  "tr",
                  { dataset: { measure: m.measure } },
                  el("td", {}, label(m.measure)),
                  el("td", {}, percent(m.rate)),
                  el("td", {}, `${m.count ?? "?"} of ${m.of ?? "?"}`),
                  el("td", {}, `${COMPARES[m.comparison] || ""} ${percent(m.threshold)}`.trim()),
                  el("td", {}, badge),
                );
              }),
            ),
          )
        : el("p", { class: "empty", text: "No health measures yet: the store needs orders in the window." }),
      el("h3", { text: "Open recommendations" }),
      open.length
        ? el(
            "ul",
            { class: "store-recs" },
            open.map((r) =>
              el(
                "li",
                {},
                r.severity ? el("span", { class: "badge sev-" + r.severity, text: r.severity }) : null,
                " ",
                label(r.reason),
                r.measure ? ": " + label(r.measure) : "",
              ),
            ),
          )
        : el("p", { class: "empty", text: "None for this store." }),
    );
  }

  function overThreshold(m) {
    if (typeof m.rate !== "number" || typeof m.threshold !== "number") return false;
    switch (m.comparison) {
      case ">=": return m.rate >= m.threshold;
      case ">": return m.rate > m.threshold;
      case "<": return m.rate < m.threshold;
      case "<=": return m.rate <= m.threshold;
      default: return false;
    }
  }

  // -- start -------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
      $("token-input").value = "";
      $("token-error").hidden = true;
      connect();
    });
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookup($("lookup-input").value);
    });
    $("health-form").addEventListener("submit", (event) => {
      event.preventDefault();
      health($("merchant-input").value);
    });
    const wanted = new URLSearchParams(location.search).get("order");
    if (wanted) {
      $("lookup-input").value = wanted;
      lookup(wanted);
    }
    render();
    connect();
    // Countdowns tick every second; which recommendations are still open, every few.
    let ticks = 0;
    setInterval(() => {
      ticks += 1;
      if (ticks % 5 === 0) renderRecommendations();
      tick();
    }, 1000);
  });
})();

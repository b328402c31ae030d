// Fletcher's pages work without this script; it adds search as you type, infinite scrolling,
// live plan, product and attention updates, zoom and pan of the graph, the data product panel,
// countdowns, and actions confirmed in a dialog.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // Runs `work` one at a time: a call while it runs makes it run once more afterwards (so the
  // last change is always fetched, and never two fetches race).
  function oneAtATime(work) {
    let running = false;
    let again = false;
    return async function run() {
      if (running) { again = true; return; }
      running = true;
      try {
        await work();
      } catch (error) {
        console.error(error);
      } finally {
        running = false;
        if (again) { again = false; run(); }
      }
    };
  }

  // A live page's stream of server-sent events from `url`, `handlers` by event type, the page's
  // "Live" status following its connection. A page left for another may be kept in the browser's
  // back/forward cache, and its open stream would go on holding one of the few connections a
  // browser makes to one server (six over HTTP/1.1: after six live pages, Chromium had the next
  // wait a minute for one). So the stream closes whenever the page is hidden, and opens again when
  // a kept page is shown again, calling `onReturn` (what changed meanwhile was not heard).
  function listen(url, handlers, onReturn) {
    const set = (text, state) => { const s = $(".live"); if (s) { s.textContent = text; s.className = `live ${state}`; } };
    let source = null;
    const open = () => {
      source = new EventSource(url);
      source.onopen = () => set("Live", "connected");
      source.onerror = () => set("Reconnecting…", "disconnected");
      for (const [type, handler] of Object.entries(handlers)) source.addEventListener(type, handler);
    };
    open();
    window.addEventListener("pagehide", () => {
      source.close();
      set("Reconnecting…", "disconnected");
    });
    window.addEventListener("pageshow", (event) => {
      if (!event.persisted) return;
      open();
      if (onReturn) onReturn();
    });
  }

  // ---- Search page -------------------------------------------------------------------------

  function setUpSearch() {
    const input = $("#search_by");
    const results = $("#results");
    if (!input || !results) return;
    const form = input.form;
    const fragment = input.dataset.fragment;
    let timer = null;
    let generation = 0;
    let controller = null;

    async function search() {
      clearTimeout(timer);
      const text = input.value;
      const mine = ++generation;
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        const response = await fetch(`${fragment}?search_by=${encodeURIComponent(text)}&page=0`, { signal: controller.signal });
        if (!response.ok || mine !== generation) return;
        results.innerHTML = await response.text();
        const url = new URL(location.href);
        if (text) url.searchParams.set("search_by", text); else url.searchParams.delete("search_by");
        url.searchParams.delete("page");
        history.replaceState(null, "", url);
        watchMore();
      } catch (error) {
        if (error.name !== "AbortError") console.error(error);
      }
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 350);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });

    // The last row fetches the next page when it comes into view.
    const observer = new IntersectionObserver(async (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        const row = entry.target;
        observer.unobserve(row);
        const mine = generation;
        const response = await fetch(row.dataset.next);
        if (!response.ok || mine !== generation || !row.isConnected) continue;
        row.insertAdjacentHTML("afterend", await response.text());
        row.remove();
        watchMore();
      }
    }, { rootMargin: "200px" });

    function watchMore() {
      for (const row of $$("tr.more", results)) observer.observe(row);
    }
    watchMore();
  }

  // ---- Plan page: zoom and pan ----------------------------------------------------------------

  function setUpGraph(root) {
    const figure = $("figure.graph", root);
    const svg = figure && $("svg", figure);
    if (!svg) return;
    const original = svg.viewBox.baseVal;
    const home = { x: original.x, y: original.y, width: original.width, height: original.height };
    let view = { ...home };
    const apply = () => svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.width} ${view.height}`);

    function zoom(factor, centerX = 0.5, centerY = 0.5) {
      const width = Math.min(Math.max(view.width * factor, home.width / 50), home.width * 4);
      const height = width * (view.height / view.width);
      view.x += (view.width - width) * centerX;
      view.y += (view.height - height) * centerY;
      view.width = width;
      view.height = height;
      apply();
    }

    figure.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = svg.getBoundingClientRect();
      zoom(event.deltaY > 0 ? 1.15 : 1 / 1.15, (event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
    }, { passive: false });

    let drag = null;
    figure.addEventListener("pointerdown", (event) => {
      if (event.target.closest("a")) return;
      drag = { x: event.clientX, y: event.clientY, view: { ...view } };
      figure.setPointerCapture(event.pointerId);
      figure.classList.add("dragging");
    });
    figure.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const box = svg.getBoundingClientRect();
      const scale = Math.max(view.width / box.width, view.height / box.height);
      view.x = drag.view.x - (event.clientX - drag.x) * scale;
      view.y = drag.view.y - (event.clientY - drag.y) * scale;
      apply();
    });
    const stop = () => { drag = null; figure.classList.remove("dragging"); };
    figure.addEventListener("pointerup", stop);
    figure.addEventListener("pointercancel", stop);

    figure.addEventListener("keydown", (event) => {
      const step = view.width / 10;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (event.key === "+" || event.key === "=") zoom(1 / 1.2);
      else if (event.key === "-") zoom(1.2);
      else if (event.key === "0") { view = { ...home }; apply(); }
      else if (moves[event.key]) { view.x += moves[event.key][0]; view.y += moves[event.key][1]; apply(); }
      else return;
      event.preventDefault();
    });

    for (const button of $$("[data-zoom]", root)) {
      button.addEventListener("click", () => {
        if (button.dataset.zoom === "in") zoom(1 / 1.25);
        else if (button.dataset.zoom === "out") zoom(1.25);
        else { view = { ...home }; apply(); }
      });
    }
  }

  // ---- Countdowns: retries and timeouts -------------------------------------------------------

  // The server's clock minus ours, so countdowns agree with the server's decisions.
  let clockOffset = 0;
  function setServerNow(iso) {
    const server = Date.parse(iso || "");
    if (!Number.isNaN(server)) clockOffset = server - Date.now();
  }

  // As the server writes them (TimerView.duration): two units at most.
  function duration(seconds) {
    seconds = Math.max(0, seconds);
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    const whole = Math.round(seconds);
    const two = (big, bigUnit, small, smallUnit) => (small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return two(Math.floor(whole / 60), "m", whole % 60, "s");
    if (whole < 86400) return two(Math.floor(whole / 3600), "h", Math.floor((whole % 3600) / 60), "m");
    return two(Math.floor(whole / 86400), "d", Math.floor((whole % 86400) / 3600), "h");
  }

  function relative(iso) {
    const seconds = Math.ceil((Date.parse(iso) - (Date.now() + clockOffset)) / 1000);
    return seconds <= 0 ? "now" : `in ${duration(seconds)}`;
  }

  function tickCountdowns() {
    for (const element of $$("time[data-countdown]")) {
      const text = relative(element.dateTime);
      if (element.textContent !== text) element.textContent = text;
    }
  }

  function countdown(iso) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.title = `${iso.slice(0, 19).replace("T", " ")} UTC`;
    element.dataset.countdown = "";
    element.textContent = relative(iso);
    return element;
  }

  function timerSpan(className, text, title, time) {
    const span = document.createElement("span");
    span.className = `timer ${className}`;
    span.textContent = text;
    if (title) span.title = title;
    if (time) span.append(time);
    return span;
  }

  // The table's timer cell from a live update's entry (as TimerView.cell writes it).
  function renderTimers(cell, timers) {
    const parts = [];
    const note = timers.timed_out;
    if (note) {
      const limit = note.limit_s == null ? note.phase : `${note.phase}, ${duration(note.limit_s)}`;
      parts.push(timerSpan("timed-out", `timed out (${limit})`, `try ${note.try} timed out`));
    }
    if (timers.retry_at) {
      parts.push(timerSpan("retry", "retry ", `try ${timers.try + 1} starts then if its parents are all success`, countdown(timers.retry_at)));
    }
    if (timers.timeout_at) parts.push(timerSpan("timeout", "times out ", null, countdown(timers.timeout_at)));
    cell.replaceChildren();
    parts.forEach((part, index) => { if (index > 0) cell.append(" "); cell.append(part); });
  }

  // ---- Plan page: data product panel ----------------------------------------------------------

  let detailHref = null;

  function setUpDetails(root) {
    const dialog = $("dialog.detail", root);
    if (!dialog || typeof dialog.showModal !== "function") return;
    root.addEventListener("click", async (event) => {
      const link = event.target.closest("a");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      const href = link.getAttribute("href") || link.getAttribute("xlink:href") || "";
      const match = href.match(/^\/plan\/[0-9a-f-]+\/product\/([0-9a-f-]+)$/);
      if (!match) return;
      event.preventDefault();
      highlight(match[1]);
      const response = await fetch(`${href}?fragment=1`);
      if (!response.ok) { location.href = href; return; }
      $(".detail-body", dialog).innerHTML = await response.text();
      detailHref = href;
      tickCountdowns();
      if (!dialog.open) dialog.showModal();
    });
  }

  // The open panel's product changed: fetch its detail again (its tries and timers), one fetch at a time.
  const refreshDetail = oneAtATime(async () => {
    const dialog = $("dialog.detail");
    if (!dialog || !dialog.open || !detailHref) return;
    const href = detailHref;
    const response = await fetch(`${href}?fragment=1`);
    if (response.ok && dialog.open && detailHref === href) {
      $(".detail-body", dialog).innerHTML = await response.text();
      tickCountdowns();
    }
  });

  function highlight(id) {
    for (const row of $$(".product-table tr.highlight")) row.classList.remove("highlight");
    for (const node of $$(".graph g.node.selected")) node.classList.remove("selected");
    const row = document.getElementById(`row-${id}`);
    if (row) { row.classList.add("highlight"); row.scrollIntoView({ block: "nearest" }); }
    const node = document.getElementById(`dp${id.replaceAll("-", "")}`);
    if (node) node.classList.add("selected");
  }

  // ---- Plan page: live updates ---------------------------------------------------------------

  function setUpLive() {
    const plan = $(".plan[data-events]");
    if (!plan || !window.EventSource) return;
    // A stream's first event (`full`) is the whole plan's state: a page shown again catches up.
    listen(plan.dataset.events, {
      plan: async (event) => {
        const update = JSON.parse(event.data);
        const current = $(".plan");
        if (current.dataset.structure !== update.structure) {
          await reload();
          return;
        }
        applyUpdate(update);
      },
    });
  }

  function applyUpdate(update) {
    for (const [id, state] of Object.entries(update.states)) {
      const node = document.getElementById(`dp${id.replaceAll("-", "")}`);
      if (node) {
        const keep = Array.from(node.classList).filter((name) => !STATES.includes(name));
        node.setAttribute("class", [...keep, state].join(" "));
        const title = $("title", node);
        if (title) title.textContent = title.textContent;
      }
      const row = document.getElementById(`row-${id}`);
      if (row) {
        const cell = $(".state-cell", row);
        if (cell && cell.textContent !== state) {
          cell.innerHTML = badge(state);
          row.classList.toggle("disabled", state === "disabled");
          row.classList.remove("flash");
          void row.offsetWidth;
          row.classList.add("flash");
        }
      }
      const detail = $(`.product-detail[data-id="${id}"] .state-cell`);
      if (detail) detail.innerHTML = badge(state);
    }
    applyTimers(update);
    applyLate(update);
    const shown = $("dialog.detail[open] .product-detail");
    if (shown && (shown.dataset.id in update.states || shown.dataset.id in (update.timers || {}))) refreshDetail();
    for (const [state, count] of Object.entries(update.counts)) {
      const element = $(`[data-count="${state}"]`);
      if (element) element.textContent = count;
    }
    const statusBadge = $("[data-status]");
    if (statusBadge) {
      statusBadge.textContent = update.paused ? "Paused" : "Active";
      statusBadge.className = `badge status ${update.paused ? "paused" : "active"}`;
    }
    const by = $(".modified-by");
    if (by) by.textContent = update.modified_by;
    const date = $(".modified-date time");
    if (date) { date.dateTime = update.modified_date; date.textContent = update.modified_text; }
  }

  // Tries and timers in the table's rows; the first event of a stream names every product that has
  // one (`full`), so the rows it leaves out have none.
  function applyTimers(update) {
    const timers = update.timers || {};
    if (update.now) setServerNow(update.now);
    const rows = update.full ? $$(".product-table tr[data-id]") : Object.keys(timers).map((id) => document.getElementById(`row-${id}`));
    for (const row of rows) {
      if (!row) continue;
      const entry = timers[row.dataset.id] || { try: 0 };
      const tryCell = $(".try-cell", row);
      if (tryCell) tryCell.textContent = entry.try ? String(entry.try) : "";
      const cell = $(".timer-cell", row);
      if (cell) renderTimers(cell, entry);
    }
  }

  // The "late" badges: the products whose lateness changed (in the first event of a stream, the
  // late ones: the others are not), and whether the dataset is late.
  function applyLate(update) {
    const late = update.late || {};
    for (const cell of $$(".product-table tr[data-id] .deadline-cell, .product-detail[data-id] .deadline-cell")) {
      const id = cell.closest("[data-id]").dataset.id;
      if (!cell.querySelector("time") || !(update.full || id in late)) continue;
      setLate(cell, late[id] === true);
    }
    const head = $(".dataset-deadline");
    if (head) setLate(head, update.dataset_late === true);
  }

  function setLate(cell, isLate) {
    const shown = $(".badge.late", cell);
    if (isLate && !shown) cell.insertAdjacentHTML("beforeend", ' <span class="badge late" title="missed its deadline and not yet success">late</span>');
    if (!isLate && shown) shown.remove();
  }

  const STATES = ["waiting", "queued", "running", "success", "failed", "disabled"];
  const badge = (state) => `<span class="badge state ${state}">${state}</span>`;

  // The plan gained products or dependencies: fetch the page again and swap it in, keeping the stream.
  async function reload() {
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = $(".plan", page);
    const current = $(".plan");
    if (!fresh || !current) return;
    const live = $(".live", current);
    current.replaceWith(fresh);
    const freshLive = $(".live", fresh);
    if (live && freshLive) freshLive.replaceWith(live);
    setUpPlan(fresh);
  }

  // ---- Actions: the confirmation in a dialog, the result in place -------------------------------

  // The dialog confirmations and refusals open in; null where dialogs are not supported (the
  // plain forms then go on as they do without this script).
  function actionDialog() {
    let dialog = $("dialog.action-dialog");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    if (typeof dialog.showModal !== "function") return null;
    dialog.className = "action-dialog";
    dialog.innerHTML = '<div class="action-body"></div>';
    dialog.addEventListener("click", (event) => {
      const link = event.target.closest("a.cancel, a.back");
      if (!link) return;
      event.preventDefault();
      dialog.close();
    });
    document.body.append(dialog);
    return dialog;
  }

  function showNotice(text) {
    if (!text) return;
    let notice = $("main > p.notice");
    if (!notice) {
      notice = document.createElement("p");
      notice.className = "notice";
      notice.setAttribute("role", "status");
      $("main").prepend(notice);
    }
    notice.textContent = text;
  }

  // Sends an action's form: without `confirm` the answer is the confirmation (or a refusal), shown
  // in the dialog; with it, the page the action returns to, whose notice is shown here.
  async function sendAction(form, dialog) {
    const confirming = form.matches(".confirm-form");
    const buttons = $$("button", form);
    buttons.forEach((button) => { button.disabled = true; });
    let response;
    let page;
    try {
      // `form.action` would be the form's field named "action": the attribute is the address.
      response = await fetch(form.getAttribute("action"), {
        method: "POST", body: new URLSearchParams(new FormData(form)), headers: { Accept: "text/html" },
      });
      page = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch (error) {
      page = new DOMParser().parseFromString(
        '<div class="refusal" role="alert"><h1>Not done</h1><p class="error">The server could not be reached. ' +
        'Nothing was changed.</p><p><a class="back" href="#">Back</a></p></div>', "text/html");
      response = { ok: false };
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
    if (confirming && response.ok) {
      dialog.close();
      showNotice(($("main > p.notice", page) || {}).textContent);
      refreshAfterAction(page);
      return;
    }
    const content = $(".confirm", page) || $(".refusal", page);
    if (!content) { HTMLFormElement.prototype.submit.call(form); return; }
    const body = $(".action-body", dialog);
    body.replaceChildren(document.adoptNode(content));
    const title = $("h1[id]", body);
    if (title) dialog.setAttribute("aria-labelledby", title.id);
    if (!dialog.open) dialog.showModal();
    const focus = $(".confirm-form button", body) || $("a.back", body);
    if (focus) focus.focus();
  }

  function setUpActions() {
    document.addEventListener("submit", (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.matches("form.action-form, form.confirm-form")) return;
      const dialog = actionDialog();
      if (!dialog) return;
      event.preventDefault();
      sendAction(form, dialog);
    });
  }

  // After an action: the page's actions (a pause becomes an unpause…) from the page it returned,
  // and the product shown, if any; the states themselves arrive over the live stream.
  function refreshAfterAction(page) {
    const planActions = $(".plan section.actions");
    const freshPlanActions = $(".plan section.actions", page);
    if (planActions && freshPlanActions) planActions.replaceWith(document.adoptNode(freshPlanActions));
    else if (planActions && $(".plan", page)) planActions.remove();
    else if (!planActions && freshPlanActions) {
      const meta = $(".plan .meta");
      if (meta) meta.after(document.adoptNode(freshPlanActions));
    }
    refreshDetail();
    refreshProductPage();
  }

  // ---- Needs attention: live counts and rows ---------------------------------------------------

  // Each `.attention-live` part fetches its fragment again when the server says something changed.
  function setUpAttention() {
    const parts = $$(".attention-live[data-events]");
    if (!parts.length || !window.EventSource) return;
    const refresh = oneAtATime(async () => {
      for (const part of parts) {
        const response = await fetch(part.dataset.fragment, { headers: { Accept: "text/html" } });
        if (response.ok) part.innerHTML = await response.text();
      }
      tickCountdowns();
    });
    listen(parts[0].dataset.events, { changed: refresh }, refresh);
  }

  // ---- Product page: live updates -------------------------------------------------------------

  // Fetches the product's detail again (its state, tries, timers and actions), one fetch at a time.
  const refreshProductPage = oneAtATime(async () => {
    const page = $(".product-page[data-product]");
    if (!page) return;
    const response = await fetch(`${location.pathname}?fragment=1`, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const detail = $(".product-detail", fresh);
    const current = $(".product-detail", page);
    if (!detail || !current) return;
    const focused = document.activeElement && current.contains(document.activeElement);
    current.replaceWith(document.adoptNode(detail));
    setServerNow(detail.dataset.now);
    tickCountdowns();
    if (focused) { const first = $(".product-detail button, .product-detail a", page); if (first) first.focus(); }
  });

  function setUpProductLive() {
    const page = $(".product-page[data-events]");
    if (!page || !window.EventSource) return;
    const id = page.dataset.product;
    let paused = null;
    listen(page.dataset.events, {
      plan: (event) => {
        const update = JSON.parse(event.data);
        // The stream's first event (`full`) is the state at connection: the page may be older than
        // it, which shows as another state. A pause changes which actions are offered.
        const shown = ($(".product-detail .state-cell", page) || {}).textContent;
        const changed = update.full
          ? (id in (update.states || {}) && update.states[id] !== shown)
          : id in (update.states || {}) || id in (update.timers || {}) || id in (update.late || {}) ||
            (paused !== null && update.paused !== paused);
        if (changed) refreshProductPage();
        paused = update.paused;
      },
    }, refreshProductPage);
  }

  function setUpPlan(root) {
    setUpGraph(root);
    setUpDetails(root);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setServerNow(($("[data-now]") || { dataset: {} }).dataset.now);
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    setUpSearch();
    setUpActions();
    setUpProductLive();
    setUpAttention();
    const plan = $(".plan");
    if (plan) {
      setUpPlan(plan);
      setUpLive();
    }
  });
})();

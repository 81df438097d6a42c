/* SRS screens: live updates, the idle lock, busy buttons, the PIN keypad, and the floor:
 * dialogs, tap-a-client-then-a-booth, and times that tick from server timestamps.
 * No inline script anywhere (the CSP forbids it): pages pass data through
 * data- attributes on <body>. */
(function () {
  "use strict";

  var body = document.body;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function fire(name, detail) {
    body.dispatchEvent(new CustomEvent(name, { detail: detail || {}, bubbles: true }));
  }

  /* --- Ready: taps held by early.js before htmx had read the page go now ------
   * Registered first, so that nothing failing below can leave the page holding taps. */
  function pageReady() {
    // htmx reads the page on DOMContentLoaded, in a listener added before this one.
    document.documentElement.setAttribute("data-srs-ready", "");
    var tap = window.srsHeldTap && window.srsHeldTap();
    if (!tap) return;
    if (tap.form && document.contains(tap.form)) {
      var submitter = tap.submitter && tap.submitter.form === tap.form ? tap.submitter : null;
      if (submitter) tap.form.requestSubmit(submitter);
      else tap.form.requestSubmit();
    } else if (tap.button && document.contains(tap.button)) {
      tap.button.click();
    }
  }
  // A deferred script runs before DOMContentLoaded, while the state is already "interactive".
  if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", pageReady);
  else pageReady();

  /* --- htmx: CSRF on every request; background refreshes say so ------------ */
  var BACKGROUND_EVENTS = /^srs:(site-\d+|refetch-\d+|alerts?-\d+|drug_alerts-\d+|resync)$/;
  body.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRFToken"] = csrfToken;
    if (evt.detail.verb !== "get") idempotencyKey(evt);
    var trigger = evt.detail.triggeringEvent;
    if (trigger && BACKGROUND_EVENTS.test(trigger.type)) {
      // Not a touch: a refresh must never keep an idle tablet unlocked.
      evt.detail.headers["X-SRS-Background"] = "1";
    }
  });

  /* --- Idempotency: one key per tap, made here ------------------------------
   * Live fragments are the same bytes on every screen, so their action forms carry no key:
   * a tap gets a fresh one, kept on its form until an answer comes back, so that a tap
   * repeated after a lost answer repeats the key and changes nothing twice. A form that
   * renders its own idempotency_key field (a dialog) sends that instead. */
  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID().replace(/-/g, "");
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function keyHolder(elt) {
    if (!elt || !elt.closest) return null;
    return elt.tagName === "FORM" ? elt : (elt.closest("form") || elt);
  }
  // The element whose request an htmx:afterRequest answers. An answer that replaced that
  // element (outerHTML) is announced from its nearest ancestor still in the page, and
  // evt.detail.elt then names the ancestor: the request's own config keeps the asker.
  function asker(evt) {
    var cfg = evt.detail.requestConfig;
    return (cfg && cfg.elt) || evt.detail.elt;
  }
  function idempotencyKey(evt) {
    var holder = keyHolder(evt.detail.elt);
    if (!holder) return;
    if (holder.tagName === "FORM" && holder.querySelector('input[name="idempotency_key"]')) return;
    if (!holder.dataset.idempotencyKey) holder.dataset.idempotencyKey = newKey();
    evt.detail.headers["Idempotency-Key"] = holder.dataset.idempotencyKey;
  }
  body.addEventListener("htmx:afterRequest", function (evt) {
    var holder = keyHolder(asker(evt));
    // Answered (done or refused): the next tap is a new action. No answer: keep the key.
    if (holder && evt.detail.xhr && evt.detail.xhr.status) delete holder.dataset.idempotencyKey;
  });

  /* --- Busy state: every submit button says it is working and cannot double-fire */
  function setBusy(button) {
    if (!button || button.disabled) return;
    button.dataset.idleLabel = button.textContent;
    if (button.dataset.busyLabel) button.textContent = button.dataset.busyLabel;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  function clearBusy(button) {
    if (!button || !button.dataset.idleLabel) return;
    button.textContent = button.dataset.idleLabel;
    delete button.dataset.idleLabel;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  function isHtmxForm(form) {
    return form.hasAttribute("hx-post") || form.hasAttribute("hx-get");
  }
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (isHtmxForm(form)) return; // htmx sends it; the htmx events below mark it busy
    if (form.dataset.submitting === "1") { evt.preventDefault(); return; }
    form.dataset.submitting = "1";
    // Disable after the browser has read the form, so the button's value still goes.
    var button = evt.submitter || form.querySelector('[type="submit"]');
    setTimeout(function () { setBusy(button); }, 0);
  });
  window.addEventListener("pageshow", function () {
    // Back button: forms restored from the page cache must work again.
    document.querySelectorAll("form").forEach(function (form) {
      form.dataset.submitting = "";
      form.querySelectorAll("[aria-busy]").forEach(clearBusy);
    });
  });
  // htmx has read the form's values by now: the tapped button goes busy, the rest of its
  // form cannot be tapped until the answer is in (hx-sync="this:drop" drops any second send).
  body.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (!elt) return;
    if (elt.tagName === "BUTTON") {
      setBusy(elt);
    } else if (elt.tagName === "FORM") {
      var trigger = evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
      var tapped = (trigger && trigger.submitter) || elt.querySelector('[type="submit"]');
      elt.querySelectorAll("button").forEach(function (button) {
        if (button === tapped) setBusy(button);
        else if (!button.disabled) { button.dataset.idleLabel = button.textContent; button.disabled = true; }
      });
      elt.setAttribute("aria-busy", "true");
      // Its answer may swap the form itself out (the answer's event then names another
      // element): the request keeps the ids of the inputs to clear once it is saved.
      if (evt.detail.xhr) {
        evt.detail.xhr.srsPreserved = Array.prototype.map.call(
          elt.querySelectorAll("input[hx-preserve]"), function (input) { return input.id; });
      }
    }
  });
  var savedInputs = [];
  body.addEventListener("htmx:afterSettle", function () {
    savedInputs.forEach(function (id) {
      var input = document.getElementById(id);
      if (input) input.value = "";
    });
    savedInputs = [];
  });
  body.addEventListener("htmx:afterRequest", function (evt) {
    var elt = asker(evt);
    var xhr = evt.detail.xhr;
    // What a nurse types survives the live refreshes (hx-preserve); once saved, it goes
    // (when the answer has settled: the preserved input has moved into it by then).
    if (evt.detail.successful && xhr && xhr.srsPreserved) {
      savedInputs = savedInputs.concat(xhr.srsPreserved);
    }
    if (!elt) return;
    if (elt.tagName === "BUTTON") clearBusy(elt);
    else if (elt.tagName === "FORM") {
      elt.querySelectorAll("button").forEach(clearBusy);
      elt.removeAttribute("aria-busy");
    }
  });

  /* --- A refresh asked for while one is in flight is not lost ------------------
   * htmx queues the second ask behind the first, then drops it when the first answer
   * replaces the element (outerHTML): a hint arriving mid-refresh (a new alarm while the
   * strip reloads) would leave the screen stale. Note it, and ask again from the element
   * that answer put in its place. And the element an answer puts in place must listen at
   * once: base.html sets htmx's settle delay to 0, since htmx processes swapped-in content
   * at settle, and a hint landing in the default 20 ms between reached neither element. */
  var refreshing = {};
  var askAgain = {};
  function isRefresh(elt, verb) {
    return verb === "get" && elt && elt.id && elt.getAttribute &&
      elt.getAttribute("hx-swap") === "outerHTML" && elt.hasAttribute("hx-get");
  }
  body.addEventListener("htmx:confirm", function (evt) {
    if (isRefresh(evt.detail.elt, evt.detail.verb) && refreshing[evt.detail.elt.id]) {
      askAgain[evt.detail.elt.id] = true;
    }
  });
  /* A refresh whose element left the page while it was asked (a tap's answer replaced it,
   * with what the tap did and why it was refused) is older than what replaced it: it is
   * dropped. Swapped in, it would land nowhere, and take with it what the person typed
   * (hx-preserve moves the field into the detached copy). A hint that came after asks a
   * new refresh from the element now in the page. htmx asks the element itself whether to
   * swap, which a detached element cannot pass on to the body: so it asks it there. */
  function dropIfGone(evt) {
    if (!document.body.contains(evt.currentTarget)) evt.detail.shouldSwap = false;
  }
  body.addEventListener("htmx:beforeRequest", function (evt) {
    var cfg = evt.detail.requestConfig;
    if (cfg && isRefresh(evt.detail.elt, cfg.verb)) {
      refreshing[evt.detail.elt.id] = true;
      // Added once however often it refreshes: the same listener is never added twice.
      evt.detail.elt.addEventListener("htmx:beforeSwap", dropIfGone);
    }
  });
  body.addEventListener("htmx:afterRequest", function (evt) {
    var cfg = evt.detail.requestConfig;
    if (!cfg || !isRefresh(asker(evt), cfg.verb)) return;
    var id = asker(evt).id;
    delete refreshing[id];
    if (!askAgain[id]) return;
    delete askAgain[id];
    setTimeout(function () {
      var fresh = document.getElementById(id);
      if (fresh && fresh.getAttribute("hx-get")) {
        window.htmx.ajax("GET", fresh.getAttribute("hx-get"), {
          source: fresh, target: fresh, swap: "outerHTML",
          headers: { "X-SRS-Background": "1" } });
      }
    }, 0);
  });

  /* --- No tap falls through: a swap or a closing dialog puts new buttons under the finger.
   * For a moment after an answer to a tap lands, the page under the alarm strip takes no
   * taps, so a double tap cannot press what appeared beneath it. */
  var SETTLE_MS = 400;
  var settleTimer = null;
  function settle() {
    body.classList.add("is-settling");
    clearTimeout(settleTimer);
    settleTimer = setTimeout(function () { body.classList.remove("is-settling"); }, SETTLE_MS);
  }
  body.addEventListener("htmx:afterRequest", function (evt) {
    var trigger = evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
    if (trigger && (trigger.type === "submit" || trigger.type === "click")) settle();
  });
  // Nor does anything slide under a finger: an alarm arriving in the strip above, a prompt
  // appearing when its time comes, and a tap aimed at one button lands on whatever moved
  // under it. A shift the person did not cause (the browser's Layout Instability API, where
  // it has one) holds taps on the page for the same moment.
  if (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes &&
      PerformanceObserver.supportedEntryTypes.indexOf("layout-shift") !== -1) {
    new PerformanceObserver(function (list) {
      if (list.getEntries().some(function (shift) { return !shift.hadRecentInput; })) settle();
    }).observe({ type: "layout-shift" });
  }

  /* --- Refusals: shown in #flash until tapped, cleared by the next action that works */
  var flash = document.getElementById("flash");
  var dialogHost = document.getElementById("dialog");
  function closeDialog() {
    if (dialogHost && dialogHost.innerHTML) settle();
    if (dialogHost) dialogHost.innerHTML = "";
  }
  // A refused request changed nothing: a dialog's next tap gets a fresh key (newKey above).
  body.addEventListener("htmx:afterRequest", function (evt) {
    var trigger = evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
    var background = trigger && BACKGROUND_EVENTS.test(trigger.type);
    if (flash && evt.detail.successful && !background) flash.innerHTML = "";
    var xhr = evt.detail.xhr;
    if (!xhr || xhr.getResponseHeader("HX-Retarget") !== "#flash") return;
    if (xhr.status === 409 || xhr.status === 404) {
      // The floor moved on (someone else acted first): show it as it is now.
      closeDialog();
      fire("srs:resync");
      return;
    }
    var elt = asker(evt);
    var form = elt && (elt.tagName === "FORM" ? elt : elt.closest && elt.closest("form"));
    var input = form && form.querySelector('input[name="idempotency_key"]');
    if (input) input.value = newKey();
  });
  if (flash) {
    flash.addEventListener("click", function () { flash.innerHTML = ""; });
  }

  /* --- Dialogs (use, reasons): one at a time in #dialog, closed by Close, Escape or a tap outside */
  document.addEventListener("click", function (evt) {
    if (evt.target.closest("[data-dialog-close]") ||
        (evt.target.matches && evt.target.matches("[data-dialog]"))) {
      closeDialog();
    }
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") closeDialog();
  });

  /* --- Code autocomplete: a tap anywhere else closes the list of known codes ---- */
  document.addEventListener("click", function (evt) {
    var list = document.getElementById("code-suggestions");
    if (list && list.firstElementChild && !evt.target.closest(".field--code")) list.innerHTML = "";
  });

  /* --- Assigning: tap a waiting client, then a free booth ----------------------- */
  var picked = null; // {id, code} of the waiting visit chosen in the queue
  function showPicked() {
    if (picked && !document.querySelector('[data-pick-visit="' + picked.id + '"]')) {
      picked = null; // gone from the queue (assigned elsewhere, left)
    }
    document.querySelectorAll("[data-pick-visit]").forEach(function (button) {
      var on = !!picked && button.dataset.pickVisit === picked.id;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      var item = button.closest(".queue__item");
      if (item) item.classList.toggle("is-picked", on);
    });
    body.classList.toggle("is-assigning", !!picked);
    var hint = document.querySelector("[data-assign-hint]");
    if (hint) {
      hint.hidden = !picked;
      var code = hint.querySelector("[data-assign-code]");
      if (code) code.textContent = picked ? picked.code : "";
    }
  }
  document.addEventListener("click", function (evt) {
    var pick = evt.target.closest("[data-pick-visit]");
    if (pick) {
      var same = picked && picked.id === pick.dataset.pickVisit;
      picked = same ? null : { id: pick.dataset.pickVisit, code: pick.dataset.code };
      showPicked();
    } else if (evt.target.closest("[data-pick-cancel]")) {
      picked = null;
      showPicked();
    }
  });
  // An assign form's URL names visit 0 until a client is picked: put the picked one in.
  body.addEventListener("htmx:configRequest", function (evt) {
    var elt = evt.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-needs-visit")) return;
    if (!picked) { evt.preventDefault(); return; }
    evt.detail.path = evt.detail.path.replace("/visits/0/", "/visits/" + picked.id + "/");
  });
  body.addEventListener("htmx:afterRequest", function (evt) {
    var elt = asker(evt);
    if (evt.detail.successful && elt && elt.hasAttribute && elt.hasAttribute("data-needs-visit")) {
      picked = null;
      showPicked();
    }
  });

  /* --- Times on screen tick here, from the timestamps in data- attributes --- */
  // The server's clock minus this screen's: a tablet with a wrong clock still counts right.
  var serverOffset = 0;
  function noteServerTime(iso) {
    var at = Date.parse(iso || "");
    if (!isNaN(at)) serverOffset = at - Date.now();
  }
  var stamped = document.querySelector("[data-generated-at]");
  if (stamped) noteServerTime(stamped.dataset.generatedAt);
  body.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.xhr) noteServerTime(evt.detail.xhr.getResponseHeader("X-SRS-Now"));
  });
  function clock(seconds) {
    var s = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    var now = Date.now() + serverOffset;
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var at = Date.parse(el.dataset.since);
      if (isNaN(at)) return;
      var seconds = Math.max(0, Math.floor((now - at) / 1000));
      el.textContent = el.dataset.format === "minutes"
        ? Math.floor(seconds / 60) + " min" : clock(seconds);
    });
    // An offer that lapses (the console's "started by mistake") goes when its time is up.
    document.querySelectorAll("[data-hide-at]").forEach(function (el) {
      var at = Date.parse(el.dataset.hideAt);
      if (!isNaN(at) && now >= at) el.hidden = true;
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var at = Date.parse(el.dataset.until);
      if (isNaN(at)) return;
      var seconds = Math.ceil((at - now) / 1000);
      var scope = el.closest("[data-due-scope]");
      el.textContent = seconds <= 0 ? (el.dataset.dueText || "Ready") : clock(seconds) + " left";
      if (scope) scope.classList.toggle("is-due", seconds <= 0);
    });
  }
  if (document.querySelector("[data-since], [data-until]") || body.dataset.live === "on") {
    setInterval(tick, 1000);
  }
  body.addEventListener("htmx:afterSettle", function () {
    showPicked();
    tick();
  });

  /* --- PIN keypad ----------------------------------------------------------- */
  document.querySelectorAll("[data-keypad-for]").forEach(function (pad) {
    var input = document.getElementById(pad.dataset.keypadFor);
    pad.addEventListener("click", function (evt) {
      var key = evt.target.closest("[data-key]");
      if (!key || !input) return;
      var value = key.dataset.key;
      if (value === "clear") input.value = "";
      else if (value === "back") input.value = input.value.slice(0, -1);
      else if (input.value.length < 6) input.value += value;
      // No focus(): on a tablet it would open the on-screen keyboard over the keypad.
      if (input.value.length === 6 && input.form) {
        input.form.requestSubmit();
      }
    });
  });

  /* --- Idle lock: a shared tablet locks after the site's idle time ---------- */
  // Not on the lock and sign-in pages (data-idle-lock="off"): a locked session's activity
  // ping is redirected, and the reload would wipe the PIN or password being typed.
  var lockAfter = parseInt(body.dataset.lockAfter || "0", 10);
  if (lockAfter > 0 && body.dataset.lockUrl && body.dataset.idleLock !== "off") {
    var lastActivity = Date.now();
    var lastPing = Date.now();
    var PING_EVERY_MS = 15000;
    var locking = false;
    var noteActivity = function () {
      lastActivity = Date.now();
      if (Date.now() - lastPing > PING_EVERY_MS && body.dataset.activityUrl) {
        lastPing = Date.now();
        fetch(body.dataset.activityUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken },
        }).then(function (response) {
          if (response.status === 401 || response.redirected) window.location.reload();
        }).catch(function () { /* offline: the banner says so */ });
      }
    };
    ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
      document.addEventListener(name, noteActivity, { passive: true });
    });
    setInterval(function () {
      if (locking || Date.now() - lastActivity < lockAfter * 1000) return;
      locking = true;
      var form = document.getElementById("lock-form");
      if (form) form.requestSubmit();
      else window.location.assign("/lock");
    }, 1000);
  }

  /* --- Offline taps: kept, and sent again with the same key ------------------
   * A tap whose request never reached the server (the tablet is offline) is not lost: it
   * waits in #pending-taps and goes again, with the same idempotency key, when the
   * connection returns (a tap that did arrive is answered from the first time, never done
   * twice). A tap the server then refuses shows as failed, with Try again. */
  var pendingTaps = [];
  var pendingBox = document.getElementById("pending-taps");
  function tapLabel(cfg) {
    var trigger = cfg.triggeringEvent;
    var button = (trigger && trigger.submitter) || (cfg.elt && cfg.elt.tagName === "BUTTON" && cfg.elt) ||
      (cfg.elt && cfg.elt.querySelector && cfg.elt.querySelector('[type="submit"]'));
    var text = button ? (button.dataset.idleLabel || button.textContent || "") : "";
    text = text.replace(/\s+/g, " ").trim() || "A tap";
    // Two kept "Cleaned" taps must say which booth each was for.
    var tile = cfg.elt && cfg.elt.closest && cfg.elt.closest(".tile");
    var place = tile && tile.querySelector(".tile__label");
    return place ? place.textContent.trim() + " " + text : text;
  }
  function showPending() {
    if (!pendingBox) return;
    pendingBox.hidden = pendingTaps.length === 0;
    pendingBox.innerHTML = "";
    pendingTaps.forEach(function (tap, index) {
      var row = document.createElement("p");
      row.className = "pending-tap" + (tap.failed ? " pending-tap--failed" : "");
      row.dataset.testid = "pending-tap";
      row.textContent = tap.failed
        ? "Not recorded: " + tap.label + ". " + tap.failed + " "
        : tap.label + ": not sent yet, it goes when the connection returns. ";
      if (tap.failed) {
        var again = document.createElement("button");
        again.type = "button";
        again.className = "btn btn--secondary";
        again.textContent = "Try again";
        again.addEventListener("click", function () { tap.failed = null; sendPending(); });
        var drop = document.createElement("button");
        drop.type = "button";
        drop.className = "btn btn--ghost";
        drop.textContent = "Dismiss";
        drop.addEventListener("click", function () { pendingTaps.splice(index, 1); showPending(); });
        row.appendChild(again);
        row.appendChild(drop);
      }
      pendingBox.appendChild(row);
    });
  }
  body.addEventListener("htmx:sendError", function (evt) {
    var cfg = evt.detail.requestConfig;
    if (!cfg || cfg.verb === "get") return;
    var trigger = cfg.triggeringEvent;
    if (trigger && BACKGROUND_EVENTS.test(trigger.type)) return;
    var params = new URLSearchParams();
    var values = cfg.formData || cfg.parameters;
    if (values && typeof values.forEach === "function") {
      values.forEach(function (value, name) { params.append(name, value); });
    }
    pendingTaps.push({ path: cfg.path, verb: cfg.verb, params: params.toString(),
                       key: cfg.headers["Idempotency-Key"] || null, label: tapLabel(cfg),
                       failed: null });
    showPending();
  });
  var sending = false;
  function sendPending() {
    if (sending || !pendingTaps.some(function (tap) { return !tap.failed; })) {
      showPending();
      return;
    }
    sending = true;
    var tap = pendingTaps.filter(function (t) { return !t.failed; })[0];
    var headers = { "X-CSRFToken": csrfToken, "HX-Request": "true",
                    "Content-Type": "application/x-www-form-urlencoded" };
    if (tap.key) headers["Idempotency-Key"] = tap.key;
    fetch(tap.path, { method: tap.verb.toUpperCase(), credentials: "same-origin",
                      headers: headers, body: tap.params })
      .then(function (response) {
        sending = false;
        if (response.ok || response.status === 409) {
          // Done, or the floor moved on meanwhile (someone else did it): either way the
          // screen shows it as it is now.
          pendingTaps.splice(pendingTaps.indexOf(tap), 1);
          fire("srs:resync");
          sendPending();
        } else {
          tap.failed = "The server answered " + response.status + ".";
          showPending();
        }
      }, function () {
        sending = false; // still offline: wait for the connection
        showPending();
      });
  }
  window.addEventListener("online", function () { setTimeout(sendPending, 500); });

  /* --- Live: Socket.IO hints, HTTP re-fetches ------------------------------- */
  var banner = document.getElementById("connection-banner");
  function showOffline(offline) {
    if (!banner) return;
    banner.hidden = !offline;
    body.classList.toggle("is-offline", offline);
  }

  // Live pages (the floor, the console, dashboards) and every page that shows alarms (the
  // strip under each site page's header, the on-call banner) follow the site; the lock and
  // sign-in pages (page-auth) have no socket: a locked session is refused one.
  var showsAlarms = !!document.querySelector("[data-alarms]");
  if ((body.dataset.live === "on" || showsAlarms) && !body.classList.contains("page-auth") &&
      window.io) {
    var socket = window.io({ transports: ["websocket", "polling"], tryAllTransports: true,
                             auth: { view: body.dataset.liveView ||
                                           (body.dataset.live === "on" ? "watch" : "alarms") } });
    socket.on("connect", function () {
      showOffline(false);
      sendPending();
      // Versions held from before may belong to a server that restarted: take what comes.
      document.querySelectorAll("[data-version]").forEach(function (el) {
        el.dataset.version = "";
      });
      // python-socketio replays nothing: whatever happened while away, fetch it now.
      fire("srs:resync");
    });
    socket.on("disconnect", function (reason) {
      showOffline(true);
      if (reason === "io server disconnect") {
        // The server cut us (lock, logout): the page decides where to go.
        window.location.reload();
      }
    });
    socket.on("connect_error", function (err) {
      showOffline(true);
      if (err && (err.message === "unauthorized" || err.message === "locked")) {
        window.location.reload();
      }
    });
    function announced(siteId, topics, msg) {
      fire("srs:site-" + siteId, msg);
      if (topics.indexOf("alerts") !== -1) fire("srs:alarms-changed", msg);
      // Panels outside the pushed fragments listen for their own topics.
      topics.forEach(function (topic) { fire("srs:" + topic + "-" + siteId, msg); });
    }
    // A change told without fragments: to a page that shows none, or when they failed to
    // render (pushed false): then fetch them.
    socket.on("changed", function (msg) {
      if (!msg || !msg.site_id) return;
      announced(msg.site_id, msg.topic ? [msg.topic] : [], msg);
      if (!msg.pushed) fire("srs:refetch-" + msg.site_id, msg);
    });
    // A change: the fragments of this screen it touched (maybe none), and its topics.
    socket.on("fragments", function (msg) {
      if (!msg || !msg.site_id) return;
      Object.keys(msg.html || {}).forEach(function (id) {
        var el = document.getElementById(id);
        if (!el || !isNewer(msg.version, el, false)) return;
        window.htmx.swap(el, msg.html[id], { swapStyle: "outerHTML" });
      });
      announced(msg.site_id, msg.topics || [], msg);
    });
    socket.on("alert", onAlert);
    // A drug alert published (or renewed): each site it covers re-reads its strip at once.
    socket.on("drug_alert", function (msg) {
      if (!msg || !msg.site_ids) return;
      msg.site_ids.forEach(function (siteId) { fire("srs:drug_alerts-" + siteId, msg); });
    });
    socket.on("session_ended", function () {
      socket.disconnect();
      window.location.reload();
    });
    window.srsSocket = socket;
  }

  /* --- Alarms: the most urgent unowned alert this screen must hear ----------- */
  // The alarm list (data-alarms) is what an HTTP GET returns; the sound follows it. The
  // floor tablet sounds every level, a supervisor's dashboard from level 2, louder at 3.
  // Sounds are vendored WAV files played through Web Audio; body[data-alarm-playing]
  // says which one is sounding (and tests read it). A page that shows alarms fetches all
  // three once it is idle, so that the first alarm's sound is here before it is needed;
  // each is decoded when it first sounds.
  var ORDER = { high: 0, medium: 1, low: 2 };
  var VOLUME = { 1: 0.6, 2: 0.85, 3: 1.0 };
  var alarmAudio = (function () {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    var urls = { high: body.dataset.soundHigh, medium: body.dataset.soundMedium,
                 low: body.dataset.soundLow };
    if (!Ctx || !urls.high) return null;
    var ctx = null, gain = null, source = null, playing = null, buffers = {}, files = {};
    function context() {
      if (!ctx) {
        ctx = new Ctx();
        gain = ctx.createGain();
        gain.connect(ctx.destination);
      }
      return ctx;
    }
    function fetchFile(priority) {
      if (!files[priority]) {
        files[priority] = fetch(urls[priority], { credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) throw new Error("sound " + response.status);
            return response.arrayBuffer();
          });
        files[priority].catch(function () { delete files[priority]; });
      }
      return files[priority];
    }
    function load(priority) {
      if (!buffers[priority]) {
        buffers[priority] = fetchFile(priority).then(function (data) {
          // Decoding takes the bytes over: a failed decode fetches them again next time.
          delete files[priority];
          return new Promise(function (resolve, reject) {
            context().decodeAudioData(data, resolve, reject);
          });
        });
        buffers[priority].catch(function () { delete buffers[priority]; });
      }
      return buffers[priority];
    }
    if (document.querySelector("[data-alarms]")) {
      window.addEventListener("load", function () {
        var idle = window.requestIdleCallback || function (run) { setTimeout(run, 1000); };
        idle(function () {
          Object.keys(urls).forEach(function (priority) {
            if (!buffers[priority]) fetchFile(priority);
          });
        }, { timeout: 2000 });
      });
    }
    function blocked(on) {
      var note = document.getElementById("sound-blocked");
      if (on && !note) {
        note = document.createElement("button");
        note.type = "button";
        note.id = "sound-blocked";
        note.className = "banner banner--danger sound-blocked";
        note.textContent = "Alarm sound is blocked on this screen: tap here to allow it.";
        body.insertBefore(note, body.firstChild);
      } else if (!on && note) {
        note.remove();
      }
    }
    function stop() {
      if (source) {
        try { source.stop(); } catch (e) { /* already ended */ }
        source = null;
      }
      playing = null;
      delete body.dataset.alarmPlaying;
    }
    function play(priority, volume, loop, onEnded) {
      var key = priority + ":" + volume + ":" + loop;
      if (playing === key) return;
      stop();
      playing = key;
      load(priority).then(function (buffer) {
        if (playing !== key) return;
        var c = context();
        var start = function () {
          if (playing !== key) return;
          blocked(false);
          source = c.createBufferSource();
          source.buffer = buffer;
          source.loop = loop;
          gain.gain.value = volume;
          source.connect(gain);
          source.onended = function () {
            if (playing !== key || loop) return;
            playing = null;
            source = null;
            delete body.dataset.alarmPlaying;
            if (onEnded) onEnded();
          };
          source.start();
          body.dataset.alarmPlaying = priority;
        };
        if (c.state === "running") start();
        else {
          blocked(true);
          c.resume().then(start, function () { /* still blocked: the banner asks for a tap */ });
        }
      }, function () { playing = null; });
    }
    // Browsers let sound start only after a tap: any tap unlocks it.
    document.addEventListener("pointerdown", function () {
      if (ctx && ctx.state !== "running") ctx.resume();
      if (!ctx) context();
    }, { passive: true });
    return { play: play, stop: stop };
  })();

  var heardLow = {}; // a low alarm sounds once per alert
  var burst = false; // a re-sound is playing: let it finish
  // Audio paused by a tap on "Silence": for at most the escalation grace, and only for the
  // alarms sounding then; a new alarm or a higher level sounds at once. Never an ownership.
  var silence = null; // { until: ms, keys: {"id:level": true} }
  var silenceTimer = null;
  function soundingKeys() {
    var keys = {};
    document.querySelectorAll('[data-alarms] [data-alert-id][data-acknowledged="0"]')
      .forEach(function (el) { keys[el.dataset.alertId + ":" + el.dataset.level] = true; });
    return keys;
  }
  function silenced() {
    if (!silence) return false;
    var left = silence.until - Date.now();
    var keys = soundingKeys();
    var covered = Object.keys(keys).every(function (k) { return silence.keys[k]; });
    if (left <= 0 || !covered || !Object.keys(keys).length) {
      silence = null;
      clearInterval(silenceTimer);
      silenceTimer = null;
    }
    document.querySelectorAll("[data-silenced]").forEach(function (mark) {
      mark.hidden = !silence;
      mark.textContent = silence ? "Silenced, " + Math.ceil(left / 1000) + " s" : "";
    });
    if (silence) body.dataset.alarmSilenced = "1";
    else delete body.dataset.alarmSilenced;
    return !!silence;
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-silence]");
    if (!button) return;
    var list = button.closest("[data-alarms]");
    var grace = parseInt((list && list.dataset.grace) || "60", 10);
    silence = { until: Date.now() + grace * 1000, keys: soundingKeys() };
    if (!silenceTimer) silenceTimer = setInterval(updateAlarm, 1000);
    updateAlarm();
  });
  function updateAlarm() {
    var best = null;
    var fresh = false;
    document.querySelectorAll("[data-alarms]").forEach(function (list) {
      // A wall display sounds every level too: it hangs where everyone sees and hears it.
      var floorView = list.dataset.alarms === "floor" || body.dataset.display === "on";
      list.querySelectorAll('[data-alert-id][data-acknowledged="0"]').forEach(function (el) {
        var level = parseInt(el.dataset.level, 10) || 1;
        if (!floorView && level < 2) return;
        var found = { priority: el.dataset.priority, level: level, id: el.dataset.alertId };
        if (found.priority === "low") {
          if (heardLow[found.id]) return;
          heardLow[found.id] = true;
          fresh = true;
        }
        if (!best || ORDER[found.priority] < ORDER[best.priority] ||
            (found.priority === best.priority && found.level > best.level)) best = found;
      });
    });
    body.classList.toggle("is-alarming", !!best && best.priority !== "low");
    markSites();
    if (best) body.dataset.alarmPriority = best.priority;
    else delete body.dataset.alarmPriority;
    var quiet = silenced();
    if (!alarmAudio) return;
    if (quiet) {
      if (!burst) alarmAudio.stop();
    } else if (best && (best.priority !== "low" || fresh)) {
      alarmAudio.play(best.priority, VOLUME[best.level] || 1, best.priority !== "low");
    } else if (!best && !burst) {
      alarmAudio.stop();
    }
  }
  // A page of many sites: each site's link says how many of its alarms nobody owns yet, and
  // the bar at the top (there while any site has one) links to each such site.
  function markSites() {
    var bar = document.querySelector("[data-site-alarm-bar]");
    var links = [];
    document.querySelectorAll("[data-site-nav]").forEach(function (link) {
      var list = document.getElementById("alerts-" + link.dataset.siteNav);
      var count = list ? list.querySelectorAll('[data-alert-id][data-acknowledged="0"]').length
        : 0;
      link.classList.toggle("site-nav__site--alarming", count > 0);
      var badge = link.querySelector("[data-site-alarms]");
      if (badge) {
        badge.hidden = !count;
        badge.textContent = count + (count === 1 ? " alarm" : " alarms");
      }
      if (count) {
        var to = document.createElement("a");
        to.className = "btn btn--danger";
        to.href = link.getAttribute("href");
        to.textContent = link.firstChild.textContent + " · " + count;
        links.push(to);
      }
    });
    if (!bar) return;
    var holder = bar.querySelector("[data-site-alarm-links]");
    holder.replaceChildren.apply(holder, links);
    bar.hidden = !links.length;
  }
  function onAlert(msg) {
    if (!msg) return;
    fire("srs:alert-" + msg.site_id, msg);
    // The on-call banner (and any other list of alarms) re-reads what is still unowned.
    fire("srs:alarms-changed", msg);
    if (msg.resound && alarmAudio && !silence) {
      // Owned but not resolved: remind everyone once, then follow the list again.
      burst = true;
      body.dataset.alarmResound = String(msg.id);
      alarmAudio.play(msg.priority, 1, false, function () { burst = false; updateAlarm(); });
    }
  }
  // Dialogs open below the alarm strip: keep its bottom edge in --alarm-strip.
  function placeStrip() {
    var bottom = 0;
    document.querySelectorAll("body > .alarms").forEach(function (strip) {
      if (strip.querySelector("[data-alert-id], [data-drug-alert-id]")) {
        bottom = Math.max(bottom, strip.getBoundingClientRect().bottom);
      }
    });
    document.documentElement.style.setProperty("--alarm-strip", Math.max(0, bottom) + "px");
  }
  body.addEventListener("htmx:afterSettle", function () { updateAlarm(); placeStrip(); });
  window.addEventListener("scroll", placeStrip, { passive: true });
  window.addEventListener("resize", placeStrip);
  updateAlarm();
  placeStrip();
  /* --- Live fragments: never an older one over a newer one ------------------
   * Each live fragment says its site's version (data-version). A pushed fragment replaces
   * one with a lower version; an HTTP answer (a re-fetch, an action's out-of-band update)
   * replaces one with a lower or equal version, since it was read no earlier. */
  function versionOf(value) {
    var n = parseInt(value || "", 10);
    return isNaN(n) ? null : n;
  }
  function isNewer(version, el, orEqual) {
    var incoming = versionOf(String(version));
    var held = versionOf(el.dataset.version);
    if (incoming === null || held === null) return true;
    return orEqual ? incoming >= held : incoming > held;
  }
  body.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var incoming = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    var target = evt.detail.target;
    if (incoming && target && target.dataset && target.dataset.version !== undefined &&
        !isNewer(incoming.getAttribute("data-version"), target, true)) {
      evt.detail.shouldSwap = false;
    }
  });
  body.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || !target.dataset || target.dataset.version === undefined) return;
    var found = /data-version="(\d*)"/.exec(evt.detail.serverResponse || "");
    if (found && !isNewer(found[1], target, true)) evt.detail.shouldSwap = false;
  });

  /* --- Wall display: say on screen whether alarms can sound without a tap ---- */
  // A kiosk browser may allow sound from the start (Chromium's autoplay policy flag); if it
  // does not, the banner stays until a tap allows it. Its own context, only to ask.
  if (body.dataset.display === "on") {
    var SoundProbe = window.AudioContext || window.webkitAudioContext;
    var probe = SoundProbe ? new SoundProbe() : null;
    var soundNote = document.getElementById("display-sound");
    var showSound = function () {
      var allowed = !!probe && probe.state === "running";
      body.dataset.soundAllowed = allowed ? "yes" : "no";
      if (soundNote) soundNote.hidden = allowed;
    };
    if (probe) {
      probe.onstatechange = showSound;
      document.addEventListener("pointerdown", function () {
        if (probe.state !== "running") probe.resume();
      }, { passive: true });
    }
    showSound();
  }

  /* --- Lists of lines an admin edits (a site's overdose places) ---------------
   * [data-line-add] adds a line cloned from its <template>, up to data-line-max lines;
   * [data-line-remove] takes its line away. Nothing is saved until the form is. */
  document.addEventListener("click", function (evt) {
    var add = evt.target.closest && evt.target.closest("[data-line-add]");
    if (add) {
      var list = document.getElementById(add.dataset.lineAdd);
      var template = document.getElementById(add.dataset.lineTemplate);
      if (!list || !template) return;
      if (list.querySelectorAll("[data-line]").length >= Number(add.dataset.lineMax || 50)) return;
      list.appendChild(template.content.cloneNode(true));
      var inputs = list.querySelectorAll("[data-line] input");
      if (inputs.length) inputs[inputs.length - 1].focus();
      return;
    }
    var remove = evt.target.closest && evt.target.closest("[data-line-remove]");
    if (remove) {
      var line = remove.closest("[data-line]");
      if (line) line.remove();
    }
  });

  /* --- Wake lock: a wall tablet must not sleep while the floor is open ------ */
  if (body.dataset.wakeLock === "on" && navigator.wakeLock) {
    var requestWakeLock = function () {
      navigator.wakeLock.request("screen").catch(function () { /* not granted: ignore */ });
    };
    requestWakeLock();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") requestWakeLock();
    });
  }

})();

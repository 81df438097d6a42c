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

  /* --- htmx: CSRF on every request; background refreshes say so ------------ */
  var BACKGROUND_EVENTS = /^srs:(site-\d+|resync)$/;
  body.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRFToken"] = csrfToken;
    var trigger = evt.detail.triggeringEvent;
    if (trigger && BACKGROUND_EVENTS.test(trigger.type)) {
      // Not a touch: a refresh must never keep an idle tablet unlocked.
      evt.detail.headers["X-SRS-Background"] = "1";
    }
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
    }
  });
  body.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (!elt) return;
    if (elt.tagName === "BUTTON") clearBusy(elt);
    else if (elt.tagName === "FORM") {
      elt.querySelectorAll("button").forEach(clearBusy);
      elt.removeAttribute("aria-busy");
    }
  });

  /* --- Refusals: shown in #flash until tapped, cleared by the next action that works */
  var flash = document.getElementById("flash");
  var dialogHost = document.getElementById("dialog");
  function closeDialog() {
    if (dialogHost) dialogHost.innerHTML = "";
  }
  // A fresh idempotency key: the refused request changed nothing, so the next tap is new.
  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
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
    var elt = evt.detail.elt;
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
    var elt = evt.detail.elt;
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
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var at = Date.parse(el.dataset.until);
      if (isNaN(at)) return;
      var seconds = Math.ceil((at - now) / 1000);
      var scope = el.closest("[data-due-scope]");
      el.textContent = seconds <= 0 ? "Ready" : clock(seconds) + " left";
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

  /* --- Live: Socket.IO hints, HTTP re-fetches ------------------------------- */
  var banner = document.getElementById("connection-banner");
  function showOffline(offline) {
    if (!banner) return;
    banner.hidden = !offline;
    body.classList.toggle("is-offline", offline);
  }

  if (body.dataset.live === "on" && window.io) {
    var socket = window.io({ transports: ["websocket", "polling"], tryAllTransports: true });
    socket.on("connect", function () {
      showOffline(false);
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
    socket.on("changed", function (msg) {
      if (msg && msg.site_id) fire("srs:site-" + msg.site_id, msg);
    });
    socket.on("session_ended", function () {
      socket.disconnect();
      window.location.reload();
    });
    window.srsSocket = socket;
  }

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

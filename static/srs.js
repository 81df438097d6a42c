/* SRS screens: live updates, the idle lock, busy buttons and the PIN keypad.
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
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
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
  body.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.tagName === "BUTTON") setBusy(elt);
  });
  body.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.tagName === "BUTTON") clearBusy(elt);
  });

  /* --- Refusals: shown in #flash until tapped, cleared by the next action that works */
  var flash = document.getElementById("flash");
  if (flash) {
    flash.addEventListener("click", function () { flash.innerHTML = ""; });
    body.addEventListener("htmx:afterRequest", function (evt) {
      var trigger = evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
      var background = trigger && BACKGROUND_EVENTS.test(trigger.type);
      if (evt.detail.successful && !background) flash.innerHTML = "";
    });
  }

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

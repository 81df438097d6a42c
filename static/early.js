/* Loaded before the page is parsed (not deferred), so it is there for the first tap.
 *
 * Until htmx has read the page, a form it will send has no other way to go: the browser
 * would submit it its own way, as a GET of the page itself with every field (a PIN among
 * them) in the address, and the typed values would be lost. A tap that lands that early is
 * held, and srs.js sends it once the page is ready (window.srsHeldTap). */
(function () {
  "use strict";
  var VERBS = "[hx-get],[hx-post],[hx-put],[hx-patch],[hx-delete]";
  var held = null;
  function ready() {
    return document.documentElement.hasAttribute("data-srs-ready");
  }
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (ready() || form.hasAttribute("action")) return;
    evt.preventDefault();
    evt.stopImmediatePropagation();
    held = { form: form, submitter: evt.submitter || null };
  }, true);
  document.addEventListener("click", function (evt) {
    if (ready() || !evt.target.closest) return;
    // The tapped control itself sends (not a live region around a plain link).
    var elt = evt.target.closest("a, button, input, [role='button']");
    if (!elt || !elt.matches(VERBS)) return;
    evt.preventDefault();
    evt.stopImmediatePropagation();
    held = { button: elt };
  }, true);
  // Whatever happens to the scripts after this one, the page takes taps once loaded.
  window.addEventListener("load", function () {
    document.documentElement.setAttribute("data-srs-ready", "");
  });
  window.srsHeldTap = function () {
    var tap = held;
    held = null;
    return tap;
  };
})();

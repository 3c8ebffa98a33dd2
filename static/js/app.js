// Tiny glue; no inline scripts anywhere (the Content-Security-Policy forbids them).
// htmx 2 does not swap 4xx/5xx responses by default; we answer invalid forms with 200 and
// let error fragments (errors/_inline.html) through so a failed request is visible.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 403 || status === 404 || status === 409 || status === 422 || status >= 500) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// The menu (templates/base.html) folds and unfolds without script; this adds what a <details> lacks:
// aria-expanded on the toggle, Escape and a click elsewhere to close it, and, in browsers without
// ::details-content, keeping it open (toggle hidden) at desktop widths where the CSS shows it inline.
(function () {
  function setUp() {
    var menu = document.querySelector("details.navmenu");
    if (!menu) return;
    var toggle = menu.querySelector("summary");
    var folding = function () { return toggle.offsetParent !== null; };  // the toggle is shown
    var sync = function () { toggle.setAttribute("aria-expanded", menu.open ? "true" : "false"); };
    if (window.CSS && CSS.supports && !CSS.supports("selector(::details-content)") && window.matchMedia) {
      var wide = window.matchMedia("(min-width: 900px)");
      var follow = function () { menu.open = wide.matches; menu.classList.toggle("inline", wide.matches); };
      follow();
      if (wide.addEventListener) wide.addEventListener("change", follow);
    }
    sync();
    menu.addEventListener("toggle", sync);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open && folding()) {
        menu.open = false;
        toggle.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (menu.open && folding() && !menu.contains(event.target)) menu.open = false;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();

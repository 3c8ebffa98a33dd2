// Template catalog pages. htmx "settles" a swapped element by copying the old element's class and
// style attributes onto its replacement (same id). Chromium gives form inputs an empty style
// attribute, and copying it is an inline style the Content-Security-Policy (style-src 'self')
// refuses and logs. Settle classes and sizes only. (Deferred scripts run in order, so htmx is loaded.)
document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    window.htmx.config.attributesToSettle = ["class", "width", "height"];
  }
});

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

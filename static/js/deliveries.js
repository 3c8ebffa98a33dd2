// Also used by the users and audit pages: a CSV link inside a filter form (a[data-csv-link]) follows
// what the form holds, since htmx searches update the table without reloading the page.
//
// The copy buttons beside openids (templates/deliveries/). Without script the buttons stay hidden and
// the openid is plain text (whole on a delivery's page, in the link's title on the list). One listener
// on the document, so rows swapped in by htmx (filters, auto-refresh) work without being set up again.
(function () {
  document.documentElement.classList.add("js-copy");

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (error) { done = false; }
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy-button") : null;
    if (!button) return;
    event.preventDefault();
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copy(button.getAttribute("data-copy") || "").then(function () {
      button.textContent = button.getAttribute("data-copied") || label;
      button.classList.add("copied");
      window.setTimeout(function () {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1500);
    }, function () {
      // No clipboard: select the openid beside the button so Ctrl+C takes it.
      var code = button.parentElement && button.parentElement.querySelector("code");
      if (code && window.getSelection) {
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    });
  });

  function syncCsvLinks() {
    var links = document.querySelectorAll("a[data-csv-link]");
    for (var i = 0; i < links.length; i++) {
      var link = links[i];
      var form = link.closest("form");
      if (!form) continue;
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (value !== "" && key !== "csrf_token") params.append(key, value);
      });
      var base = link.getAttribute("href").split("?")[0];
      var query = params.toString();
      link.setAttribute("href", query ? base + "?" + query : base);
    }
  }
  document.addEventListener("input", syncCsvLinks);
  document.addEventListener("change", syncCsvLinks);
})();

/*
 * tongzhi-mp.js: the mini-program side of Tongzhi's /api/mp/ (plain ES5, no build step, no dependency).
 *
 * Copy this file into the mini-program (e.g. utils/tongzhi-mp.js) and:
 *
 *   var tongzhi = require("../../utils/tongzhi-mp.js").create({ baseUrl: "https://tongzhi.example.com" });
 *   tongzhi.login();                                         // wx.login -> POST /api/mp/session
 *   // in a tap handler (WeChat opens the dialog only from a tap or a payment callback):
 *   tongzhi.requestAndReport(["TEMPLATE_ID_1", "TEMPLATE_ID_2"], { scene: "order_paid", page: "pages/order/detail" })
 *     .then(function (result) { console.log(result.grants); });
 *   tongzhi.balances().then(function (grants) { ... });      // decide whether to ask again
 *   tongzhi.reportSettings();                                // wx.getSetting({withSubscriptions: true})
 *   // in the onLoad(query) of every page a campaign message may open:
 *   tongzhi.reportOpen(query);                               // counts the open if the page carries tz=
 *
 * Every function returns a Promise. The session token is kept in storage (key "tongzhi.token") and
 * renewed by logging in again when the API answers 401. A report carries an Idempotency-Key, reused
 * when the report is retried, so a prompt is never counted twice. Errors reject with
 * { status, code, message } (the API's JSON error), or { status: 0, code: "network" }.
 */
(function (root) {
  "use strict";

  var TOKEN_KEY = "tongzhi.token";
  // The mini-program's global `wx` (older base libraries have no globalThis to find it on).
  var globalWx = typeof wx !== "undefined" ? wx : root && root.wx;

  function newKey() {
    var key = Date.now().toString(36) + "-";
    for (var i = 0; i < 16; i++) {
      key += Math.floor(Math.random() * 36).toString(36);
    }
    return key;
  }

  function create(options) {
    var wx = (options && options.wx) || globalWx;
    var baseUrl = String((options && options.baseUrl) || "").replace(/\/+$/, "");
    var retries = options && typeof options.retries === "number" ? options.retries : 2;
    var token = null;
    try {
      token = wx.getStorageSync(TOKEN_KEY) || null;
    } catch (e) {
      token = null;
    }

    function request(method, path, data, headers) {
      return new Promise(function (resolve, reject) {
        wx.request({
          url: baseUrl + path,
          method: method,
          data: data,
          header: headers || {},
          dataType: "json",
          success: function (res) {
            if (res.statusCode >= 200 && res.statusCode < 300) {
              resolve(res.data);
              return;
            }
            var error = (res.data && res.data.error) || {};
            reject({ status: res.statusCode, code: error.code || "http_" + res.statusCode, message: error.message || "" });
          },
          fail: function (err) {
            reject({ status: 0, code: "network", message: (err && err.errMsg) || "request failed" });
          }
        });
      });
    }

    function wxCall(name, params) {
      return new Promise(function (resolve, reject) {
        var args = {};
        for (var k in params || {}) {
          if (Object.prototype.hasOwnProperty.call(params, k)) args[k] = params[k];
        }
        args.success = resolve;
        args.fail = reject;
        wx[name](args);
      });
    }

    function login() {
      return wxCall("login", {}).then(function (res) {
        return request("POST", "/api/mp/session", { code: res.code });
      }).then(function (body) {
        token = body.token;
        try {
          wx.setStorageSync(TOKEN_KEY, token);
        } catch (e) { /* storage full: keep the token in memory */ }
        return body;
      });
    }

    function ensureToken() {
      return token ? Promise.resolve(token) : login().then(function () { return token; });
    }

    // An authenticated call: log in first if needed, once more on 401, retry network errors and 429/503.
    function authed(method, path, data, extraHeaders) {
      var attempt = 0;
      var relogged = false;
      function run() {
        return ensureToken().then(function () {
          var headers = { Authorization: "Bearer " + token };
          for (var k in extraHeaders || {}) {
            if (Object.prototype.hasOwnProperty.call(extraHeaders, k)) headers[k] = extraHeaders[k];
          }
          return request(method, path, data, headers);
        }).catch(function (error) {
          if (error.status === 401 && !relogged) {
            relogged = true;
            token = null;
            return run();
          }
          if ((error.status === 0 || error.status === 429 || error.status === 503) && attempt < retries) {
            attempt += 1;
            return new Promise(function (resolve) { setTimeout(resolve, 500 * attempt); }).then(run);
          }
          throw error;
        });
      }
      return run();
    }

    // Ask (from a tap handler), then report what the user answered. Resolves with
    // { result: <wx success object>, grants: [...] }; rejects with wx's fail object if the prompt failed.
    function requestAndReport(tmplIds, extra) {
      return wxCall("requestSubscribeMessage", { tmplIds: tmplIds }).then(function (result) {
        return report(result, extra).then(function (body) {
          return { result: result, grants: body.grants };
        });
      });
    }

    // Report a success object obtained elsewhere (e.g. your own wx.requestSubscribeMessage call).
    function report(result, extra) {
      var body = {};
      for (var k in result) {
        if (Object.prototype.hasOwnProperty.call(result, k)) body[k] = result[k];
      }
      if (extra && extra.scene !== undefined) body.scene = extra.scene;
      if (extra && extra.page !== undefined) body.page = extra.page;
      return authed("POST", "/api/mp/grants", body, { "Idempotency-Key": newKey() });
    }

    function balances() {
      return authed("GET", "/api/mp/grants").then(function (body) { return body.grants; });
    }

    // A campaign message's page carries tz=<token>: report it, so the campaign counts the open (once,
    // however often the page is opened). Meant as one line in onLoad(query): it never rejects. Resolves
    // true when Tongzhi recorded the open (now or earlier), false when it did not (the token is not this
    // user's, or the request failed after its retries), null when the query has no tz (nothing is sent).
    function reportOpen(query) {
      var tz = query && query.tz;
      if (typeof tz !== "string" || tz === "") return Promise.resolve(null);
      return authed("POST", "/api/mp/opens", { tz: tz }).then(
        function () { return true; },
        function () { return false; }
      );
    }

    function reportSettings() {
      return wxCall("getSetting", { withSubscriptions: true }).then(function (res) {
        return authed("POST", "/api/mp/settings", res.subscriptionsSetting || { mainSwitch: true });
      });
    }

    return {
      login: login,
      requestAndReport: requestAndReport,
      report: report,
      balances: balances,
      reportSettings: reportSettings,
      reportOpen: reportOpen
    };
  }

  var api = { create: create };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  } else {
    root.tongzhiMp = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : typeof global !== "undefined" ? global : this);

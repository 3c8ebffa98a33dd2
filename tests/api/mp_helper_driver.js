// Drives static/tongzhi-mp.js under Node with a stand-in `wx` whose calls go over real HTTP:
// wx.login and wx.requestSubscribeMessage to the WeChat sandbox, wx.request to Tongzhi.
// Prints one JSON line with what each helper call resolved to. An optional fifth argument is a JSON list of
// onLoad queries, each handed to reportOpen in turn.
"use strict";
const path = require("path");
const [tongzhi, sandbox, openid, answersJson, opensJson] = process.argv.slice(2);
const answers = JSON.parse(answersJson);
const openQueries = JSON.parse(opensJson || "[]");
const storage = {};
const requests = [];

async function post(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  return res.json();
}

const wx = {
  getStorageSync: (key) => storage[key] || "",
  setStorageSync: (key, value) => { storage[key] = value; },
  login: ({ success, fail }) => post(`${sandbox}/sandbox/api/users/${openid}/login-code`).then((b) => success({ code: b.code }), fail),
  requestSubscribeMessage: ({ tmplIds, success, fail }) => {
    const chosen = {};
    for (const id of tmplIds) chosen[id] = answers[id];
    post(`${sandbox}/sandbox/api/users/${openid}/prompt`, { templates: chosen }).then(success, fail);
  },
  getSetting: ({ success }) => success({ subscriptionsSetting: { mainSwitch: true, itemSettings: {} } }),
  request: ({ url, method, data, header, success, fail }) => {
    requests.push({ method, url: url.replace(tongzhi, ""), idempotencyKey: header["Idempotency-Key"] || null, data: data === undefined ? null : data });
    const init = { method, headers: { ...header } };
    if (method !== "GET" && data !== undefined) {
      init.body = JSON.stringify(data);
      init.headers["Content-Type"] = "application/json";
    }
    fetch(url, init).then(async (res) => success({ statusCode: res.status, data: await res.json() }), (e) => fail({ errMsg: String(e) }));
  },
};

(async () => {
  const helper = require(path.resolve(__dirname, "../../static/tongzhi-mp.js")).create({ baseUrl: tongzhi, wx });
  const out = {};
  out.login = await helper.login();
  out.reported = await helper.requestAndReport(Object.keys(answers), { scene: "order_paid", page: "pages/order/detail" });
  out.balances = await helper.balances();
  out.settings = await helper.reportSettings();
  out.opens = [];
  for (const query of openQueries) out.opens.push(await helper.reportOpen(query));
  storage["tongzhi.token"] = "forged";
  const relogin = require(path.resolve(__dirname, "../../static/tongzhi-mp.js")).create({ baseUrl: tongzhi, wx });
  out.afterForgedToken = await relogin.balances();
  out.requests = requests;
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => { process.stderr.write(JSON.stringify(e) + "\n"); process.exit(1); });

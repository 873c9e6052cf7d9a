#include "common/status/status_page.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status/live_status.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

// The page: a style sheet, the chart and table containers, the status
// inline (id "initial"), and the script that renders it and polls
// status.json. Test hooks: every task's table row has data-task="type:i";
// each chart's <svg> has data-points (the points drawn).
constexpr char kHead[] = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Estuary cluster</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}
#summary{margin:0 0 12px}
.charts{display:flex;gap:16px;flex-wrap:wrap}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:11px;fill:#555}
table{border-collapse:collapse;margin-top:12px;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;white-space:nowrap}
td.wrap{white-space:normal;max-width:280px}
th{background:#eee}
.ALIVE{color:#0a7d20}.DEAD{color:#c00;font-weight:600}.DISCONNECTED{color:#777}
.UNREGISTERED{color:#b60}
#updated{color:#777;margin-top:8px}
.legend span{display:inline-block;margin-right:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
</style></head><body>
<h1>Estuary cluster</h1>
<div id="summary"></div>
<div class="legend" id="legend"></div>
<div class="charts">
<figure><figcaption>steps/s per task</figcaption>
<svg id="chart-steps" width="560" height="220" data-points="0"></svg></figure>
<figure><figcaption>loss per task</figcaption>
<svg id="chart-loss" width="560" height="220" data-points="0"></svg></figure>
</div>
<table id="tasks"><thead><tr><th>task</th><th>state</th><th>incarnation</th>
<th>restarts</th><th>global step</th><th>steps/s</th><th>examples/s</th><th>loss</th>
<th>ms/step: input / compute / comm / apply</th><th>PS shard</th>
<th>last checkpoint</th><th>last eval</th><th>address</th><th>last report</th></tr></thead>
<tbody></tbody></table>
<div id="updated"></div>
<script id="initial" type="application/json">)html";

constexpr char kTail[] = R"html(</script>
<script>
"use strict";
const COLORS = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2",
                "#17becf","#bcbd22","#7f7f7f"];
const SVGNS = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const REFRESH_MS = params.has("refresh") ? Number(params.get("refresh")) : REFRESH_DEFAULT;
function taskName(t) { return t.task.type + ":" + t.task.index; }
function num(x) { return Number(x || 0); }
function fmt(v) {
  v = num(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  return v.toPrecision(4).replace(/\.?0+$/, "");
}
function bytes(b) {
  b = num(b); const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0;
  while (b >= 1024 && i < 4) { b /= 1024; i++; }
  return i ? b.toFixed(1) + " " + u[i] : b + " B";
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
function chart(id, tasks, value, colorOf) {
  const svg = document.getElementById(id);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 560, H = 220, L = 52, R = 10, T = 10, B = 28;
  let xmax = 0, ymin = Infinity, ymax = -Infinity, points = 0;
  const lines = [];
  for (const t of tasks) {
    const pts = (t.series || []).filter(p => value(p) !== null);
    if (!pts.length) continue;
    lines.push([t, pts]);
    for (const p of pts) {
      xmax = Math.max(xmax, p.time_secs); ymin = Math.min(ymin, value(p));
      ymax = Math.max(ymax, value(p));
    }
  }
  svg.appendChild(svgEl("rect", {x: L, y: T, width: W - L - R, height: H - T - B,
                                 fill: "none", stroke: "#ccc"}));
  if (!lines.length) {
    const t = svgEl("text", {x: L + 8, y: T + 20}); t.textContent = "no training reports yet";
    svg.appendChild(t); svg.setAttribute("data-points", "0"); return;
  }
  if (ymin === ymax) { ymin -= 0.5; ymax += 0.5; }
  if (ymin > 0 && ymin < ymax / 3) ymin = 0;
  const xs = x => L + (xmax > 0 ? x / xmax : 0) * (W - L - R);
  const ys = y => T + (1 - (y - ymin) / (ymax - ymin)) * (H - T - B);
  const label = (x, y, s, anchor) => {
    const e = svgEl("text", {x: x, y: y, "text-anchor": anchor || "start"});
    e.textContent = s; svg.appendChild(e);
  };
  label(L - 4, T + 10, fmt(ymax), "end"); label(L - 4, H - B, fmt(ymin), "end");
  label(L, H - 10, "0 s"); label(W - R, H - 10, xmax.toFixed(0) + " s", "end");
  for (const [t, pts] of lines) {
    points += pts.length;
    const d = pts.map(p => xs(p.time_secs).toFixed(1) + "," + ys(value(p)).toFixed(1)).join(" ");
    svg.appendChild(svgEl("polyline", {points: d, fill: "none", stroke: colorOf(t),
                                       "stroke-width": 1.5, "data-task": taskName(t)}));
    const last = pts[pts.length - 1];
    svg.appendChild(svgEl("circle", {cx: xs(last.time_secs), cy: ys(value(last)), r: 2.5,
                                     fill: colorOf(t)}));
  }
  svg.setAttribute("data-points", String(points));
}
function render(s) {
  const tasks = s.tasks || [];
  const colors = {};
  tasks.forEach((t, i) => { colors[taskName(t)] = COLORS[i % COLORS.length]; });
  const colorOf = t => colors[taskName(t)];
  const summary = document.getElementById("summary");
  summary.textContent = "global step " + num(s.global_step) + " \u00b7 " +
      fmt(s.steps_per_sec) + " steps/s \u00b7 " + fmt(s.examples_per_sec) +
      " examples/s \u00b7 " + tasks.length + " tasks \u00b7 up " + num(s.uptime_secs).toFixed(0) +
      " s" + (s.coordinator ? " \u00b7 coordinator " + s.coordinator : "") +
      (s.shutdown_requested ? " \u00b7 shutting down" + (s.job_failed ? " (failed)" : "") +
                              ": " + s.shutdown_reason : "");
  summary.setAttribute("data-global-step", String(num(s.global_step)));
  const legend = document.getElementById("legend");
  legend.textContent = "";
  for (const t of tasks) {
    if (!(t.series || []).length) continue;
    const span = el("span"); const sw = el("span", undefined, "swatch");
    sw.style.background = colorOf(t); span.appendChild(sw);
    span.appendChild(document.createTextNode(taskName(t))); legend.appendChild(span);
  }
  chart("chart-steps", tasks, p => num(p.steps_per_sec), colorOf);
  chart("chart-loss", tasks, p => p.has_loss ? num(p.loss) : null, colorOf);
  const body = document.querySelector("#tasks tbody");
  body.textContent = "";
  for (const t of tasks) {
    const r = t.report || {};
    const trains = num(r.local_steps) > 0;
    const tr = el("tr"); tr.setAttribute("data-task", taskName(t));
    const cells = [];
    cells.push(el("td", taskName(t)));
    cells.push(el("td", t.state.replace("TASK_", "") +
                        (r.phase && t.state === "TASK_ALIVE" ? " (" + r.phase + ")" : ""),
                  t.state.replace("TASK_", "")));
    cells.push(el("td", t.incarnation || "-"));
    cells.push(el("td", String(t.restarts || 0)));
    cells.push(el("td", trains || num(r.global_step) ? String(num(r.global_step)) : "-"));
    cells.push(el("td", trains ? fmt(r.steps_per_sec) : "-"));
    cells.push(el("td", trains ? fmt(r.examples_per_sec) : "-"));
    cells.push(el("td", r.has_loss ? fmt(r.loss) : "-"));
    const ph = r.phases;
    cells.push(el("td", ph ? [ph.input_wait_secs, ph.compute_secs, ph.communication_secs,
                              ph.apply_secs].map(x => fmt(num(x) * 1e3)).join(" / ")
                           : "-"));
    const ps = r.ps_shard;
    cells.push(el("td", ps ? num(ps.variables) + " vars, " + num(ps.rows) + " rows, " +
                             bytes(ps.bytes) : "-"));
    cells.push(el("td", num(r.last_checkpoint_step) ? "step " + num(r.last_checkpoint_step)
                                                    : "-"));
    let ev = "-", all = "";
    if (num(r.last_eval_step)) {
      ev = "step " + num(r.last_eval_step);
      const m = r.last_eval_metrics || {};
      // The headline metrics when the head has them; every one in the tooltip.
      let keys = ["loss", "accuracy", "auc", "average_loss"].filter(k => k in m);
      if (!keys.length) keys = Object.keys(m).sort().filter(k => k !== "global_step");
      for (const k of keys) ev += " " + k + "=" + fmt(m[k]);
      for (const k of Object.keys(m).sort()) all += k + " = " + fmt(m[k]) + "\n";
    }
    const evCell = el("td", ev, "wrap");
    if (all) evCell.title = all;
    cells.push(evCell);
    cells.push(el("td", t.address || "-"));
    cells.push(el("td", t.last_report_age_secs < 0 ? "never"
                                                   : num(t.last_report_age_secs).toFixed(1) + " s ago"));
    if (t.reason) cells[1].title = t.reason;
    for (const c of cells) tr.appendChild(c);
    body.appendChild(tr);
  }
  document.getElementById("updated").textContent =
      "updated " + new Date().toLocaleTimeString() +
      (REFRESH_MS > 0 ? " \u00b7 refreshing every " + REFRESH_MS / 1000 + " s" : "");
}
render(JSON.parse(document.getElementById("initial").textContent));
function poll() {
  fetch("status.json", {cache: "no-store"})
      .then(r => r.json()).then(render)
      .catch(e => { document.getElementById("updated").textContent = "cannot reach the chief: " + e; })
      .finally(() => setTimeout(poll, REFRESH_MS));
}
if (REFRESH_MS > 0) setTimeout(poll, REFRESH_MS);
</script></body></html>
)html";

serving::HttpReply Error(int status, const std::string& message) {
  serving::HttpReply r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump();
  return r;
}

}  // namespace

std::string StatusPageHtml(const coordination::ClusterStatus& status, int refresh_ms) {
  // '<' appears only inside JSON strings, where \u003c reads back the same;
  // escaping it keeps "</script>" in a task's reason from ending the block.
  const std::string json = absl::StrReplaceAll(StatusToJson(status), {{"<", "\\u003c"}});
  std::string tail = absl::StrReplaceAll(kTail, {{"REFRESH_DEFAULT", absl::StrCat(refresh_ms)}});
  return absl::StrCat(kHead, json, tail);
}

serving::HttpReply StatusPage::Handle(const std::string& method, const std::string& path) const {
  if (method != "GET" && method != "HEAD") return Error(405, "only GET is served here");
  const std::string p = path.substr(0, path.find('?'));
  serving::HttpReply r;
  if (p == "/" || p == "/index.html") {
    r.body = StatusPageHtml(provider_(), /*refresh_ms=*/2000);
    r.content_type = "text/html; charset=utf-8";
    return r;
  }
  if (p == "/status.json") {
    r.body = StatusToJson(provider_());
    return r;
  }
  return Error(404, absl::StrCat("no page ", p, ": the status page is / and its JSON /status.json"));
}

absl::StatusOr<std::unique_ptr<StatusHttpServer>> StatusHttpServer::Start(
    const StatusHttpServerOptions& options, StatusProvider provider) {
  std::unique_ptr<StatusHttpServer> s(new StatusHttpServer(std::move(provider)));
  serving::HttpServerOptions o;
  o.host = options.host;
  o.port = options.port;
  o.num_threads = options.num_threads;
  o.max_body_bytes = 1 << 16;
  const StatusPage* page = &s->page_;
  absl::StatusOr<std::unique_ptr<serving::HttpServer>> http = serving::HttpServer::Start(
      o, [page](const std::string& method, const std::string& path, const std::string&) {
        return page->Handle(method, path);
      });
  if (!http.ok()) {
    return absl::UnavailableError(absl::StrCat("status page: ", http.status().message()));
  }
  s->http_ = *std::move(http);
  return s;
}

}  // namespace estuary

// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_STATUS_PAGE_HPP
#define MALLARD_DETAIL_HTTP_STATUS_PAGE_HPP

// The live status page served at server_options::status_path: one HTML page
// with its script and style inline (nothing fetched from elsewhere), which
// reads metrics_path once a second and draws the last two minutes.

#include <string>
#include <string_view>

namespace mallard::detail {

inline constexpr std::string_view status_page_head = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mallard status</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  #state { color: #667; margin-bottom: 1em; }
  #state.down { color: #b3261e; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1em; }
  .card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: .8em 1em; }
  .card h2 { font-size: .85em; font-weight: 600; color: #556; margin: 0; text-transform: uppercase; letter-spacing: .04em; }
  .value { font-size: 1.8em; font-variant-numeric: tabular-nums; margin: .1em 0 .3em; }
  canvas { width: 100%; height: 70px; display: block; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  td, th { text-align: left; padding: .15em .4em; border-bottom: 1px solid #eef0f4; }
  th { font-weight: 600; color: #556; }
  td.n { text-align: right; }
</style>
</head>
<body>
<h1>mallard status</h1>
<div id="state">connecting…</div>
<div class="grid">
  <div class="card"><h2>Connections open</h2><div class="value" id="connections">–</div><canvas id="connections-chart"></canvas></div>
  <div class="card"><h2>Messages in / s</h2><div class="value" id="in-rate">–</div><canvas id="in-rate-chart"></canvas></div>
  <div class="card"><h2>Messages out / s</h2><div class="value" id="out-rate">–</div><canvas id="out-rate-chart"></canvas></div>
  <div class="card"><h2>Send queues (bytes)</h2><div class="value" id="queued">–</div><canvas id="queued-chart"></canvas></div>
  <div class="card"><h2>Groups</h2><div class="value" id="groups">–</div><div id="members">–</div></div>
  <div class="card"><h2>Closes by code</h2><table id="closes"><tr><th>code</th><th>cause</th><th>count</th></tr></table></div>
  <div class="card"><h2>Routes</h2><table id="routes"><tr><th>route</th><th>open</th><th>in</th><th>out</th></tr></table></div>
</div>
<script>
)html";

inline constexpr std::string_view status_page_tail = R"html(
const history = { connections: [], "in-rate": [], "out-rate": [], queued: [] };
const keep = 120;
let previous = null;

// The Prometheus text format: "name{a="x",b="y"} value" per line.
function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}
const sum = (samples, name) =>
  samples.filter(s => s.name === name).reduce((a, s) => a + s.value, 0);

function draw(id) {
  const canvas = document.getElementById(id + "-chart");
  const points = history[id];
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * ratio;
  canvas.height = canvas.clientHeight * ratio;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const top = Math.max(1, ...points);
  g.strokeStyle = "#2f6fde";
  g.lineWidth = 2 * ratio;
  g.beginPath();
  points.forEach((v, i) => {
    const x = canvas.width - ((points.length - 1 - i) / (keep - 1)) * canvas.width; // newest at the right
    const y = canvas.height - (v / top) * (canvas.height - 4 * ratio) - 2 * ratio;
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}

function show(id, value, text) {
  history[id].push(value);
  if (history[id].length > keep) history[id].shift();
  document.getElementById(id).textContent = text ?? Math.round(value).toLocaleString();
  draw(id);
}

function fillTable(id, rows) {
  const table = document.getElementById(id);
  while (table.rows.length > 1) table.deleteRow(1);
  for (const row of rows) {
    const tr = table.insertRow();
    row.forEach((cell, i) => {
      const td = tr.insertCell();
      td.textContent = cell;
      if (i > 0 && typeof cell === "number") td.className = "n";
    });
  }
}

async function poll() {
  const state = document.getElementById("state");
  try {
    const response = await fetch(metricsPath, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const samples = parse(await response.text());
    const now = performance.now();
    const totals = {
      in: sum(samples, "mallard_received_messages_total"),
      out: sum(samples, "mallard_sent_messages_total"),
    };
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    show("connections", sum(samples, "mallard_connections_open"));
    show("in-rate", seconds > 0 ? Math.max(0, totals.in - previous.in) / seconds : 0);
    show("out-rate", seconds > 0 ? Math.max(0, totals.out - previous.out) / seconds : 0);
    show("queued", sum(samples, "mallard_send_queue_bytes"));
    previous = { at: now, ...totals };
    document.getElementById("groups").textContent = sum(samples, "mallard_groups").toLocaleString();
    document.getElementById("members").textContent =
      sum(samples, "mallard_group_members").toLocaleString() + " memberships";
    fillTable("closes", samples.filter(s => s.name === "mallard_connections_closed_total")
      .map(s => [s.labels.code, s.labels.cause.replace(/_/g, " "), s.value])
      .sort((a, b) => b[2] - a[2]));
    const byRoute = name => Object.fromEntries(
      samples.filter(s => s.name === name).map(s => [s.labels.route, s.value]));
    const open = byRoute("mallard_connections_open");
    const received = byRoute("mallard_received_messages_total");
    const sent = byRoute("mallard_sent_messages_total");
    fillTable("routes", Object.keys(open).map(r => [r, open[r], received[r] ?? 0, sent[r] ?? 0]));
    state.className = "";
    state.textContent = "live: updated " + new Date().toLocaleTimeString() + " from " + metricsPath;
  } catch (error) {
    state.className = "down";
    state.textContent = "cannot read " + metricsPath + ": " + error.message;
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
)html";

/// The page, reading the metrics at `metrics_path` (a path checked when the
/// server was made: it starts with '/' and is a URL path).
inline std::string status_page(std::string_view metrics_path)
{
    std::string page(status_page_head);
    page += "const metricsPath = \"";
    for (char const c : metrics_path) {
        // Inside a script's string: nothing may end the string or the script.
        if (c == '"' || c == '\\' || c == '<' || c == '>' || static_cast<unsigned char>(c) < 0x20) {
            constexpr char digits[] = "0123456789abcdef";
            page += "\\u00";
            page += digits[(static_cast<unsigned char>(c) >> 4) & 0xf];
            page += digits[static_cast<unsigned char>(c) & 0xf];
        } else {
            page += c;
        }
    }
    page += "\";";
    page += status_page_tail;
    return page;
}

} // namespace mallard::detail

#endif

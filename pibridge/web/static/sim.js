// The simulator's page: polls /api/agent and /api/values every second.
"use strict";

const WINDOW_MS = 10 * 60 * 1000;
// Live values arrive within milliseconds; later than this they waited in the outbox.
const LATE_MS = 1500;
const sim = { lastId: null, charts: new Map(), cards: new Map(), cutUntil: null };

function chartFor(key) {
  let chart = sim.charts.get(key);
  if (!chart) {
    chart = new LineChart(null, { windowMs: WINDOW_MS, gapMs: 10000, marked: (p) => p[2] > LATE_MS });
    sim.charts.set(key, chart);
  }
  return chart;
}

function number(value) {
  if (typeof value === "boolean") return value ? 1 : 0;
  return typeof value === "number" && isFinite(value) ? value : null;
}

function addValues(rows) {
  for (const [, client, sensor, metric, value, timestampMs, receivedAt] of rows) {
    const v = number(value);
    if (v === null) continue;
    chartFor(`${client}/${sensor}/${metric}`).add([[timestampMs, v, receivedAt * 1000 - timestampMs]]);
  }
}

function unitText(metric) {
  if (metric.unit) return metric.unit;
  if (metric.value_type === "bool") return boolWords(metric.name).join("/");
  if (metric.value_type === "string") return "text";
  return metric.value_annotation || "";
}

function showClients(clients) {
  const box = document.getElementById("clients");
  if (!clients.length && !box.firstChild) {
    box.append(el("p", { class: "hint", id: "no-clients",
      text: "No client has asked for a certificate yet. Start pibridge with this simulator as its agent." }));
  }
  for (const client of clients) {
    let section = box.querySelector(`[data-client="${CSS.escape(client.client_id)}"]`);
    if (!section) {
      document.getElementById("no-clients")?.remove();
      section = el("section", { "data-client": client.client_id },
        el("div", { class: "client-head" },
          el("h2", { class: "section" }, "Client ", el("span", { class: "client-name" })),
          el("span", { class: "mono", text: client.client_id })),
        el("div", { class: "sensors" }));
      box.append(section);
    }
    setText(section.querySelector(".client-name"), `“${client.name}”${client.revoked ? " (deleted)" : ""}`);
    const grid = section.querySelector(".sensors");
    for (const sensor of client.sensors) {
      const key = `${client.client_id}/${sensor.sensor_id}`;
      let card = sim.cards.get(key);
      if (!card) {
        card = el("article", { class: "card sensor", "data-sensor": sensor.name },
          el("div", { class: "sensor-head" },
            el("div", {}, el("h3"), el("div", { class: "hint mono", text: `sensor ${sensor.sensor_id}` })),
            el("span", { class: "pill sensor-state" })),
          el("div", { class: "metrics" }));
        sim.cards.set(key, card);
        grid.append(card);
      }
      setText(card.querySelector("h3"), sensor.name);
      const state = card.querySelector(".sensor-state");
      const offline = sensor.state === 1 || sensor.state === "offline";
      setText(state, offline ? "reported offline" : "online");
      state.className = `pill sensor-state ${offline ? "bad" : "good"}`;
      const metricsBox = card.querySelector(".metrics");
      for (const metric of sensor.metrics) {
        let block = metricsBox.querySelector(`[data-metric-id="${CSS.escape(metric.metric_id)}"]`);
        const chart = chartFor(`${key}/${metric.metric_id}`);
        if (!block) {
          const canvas = el("canvas", { class: "chart", "data-points": "0" });
          block = el("div", { class: "metric", "data-metric-id": metric.metric_id, "data-metric": metric.name },
            el("div", { class: "metric-head" },
              el("span", {}, el("span", { class: "metric-name" }), " ", el("span", { class: "metric-meta" })),
              el("span", { class: "metric-value" })),
            canvas);
          metricsBox.append(block);
          chart.bind(canvas);
          chart.step = metric.value_type === "bool";
          chart.words = boolWords(metric.name);
          if (metric.value_type === "string") canvas.hidden = true;
        }
        chart.unit = metric.unit;
        setText(block.querySelector(".metric-name"), metric.name);
        setText(block.querySelector(".metric-meta"), unitText(metric));
        setText(block.querySelector(".metric-value"), formatValue(metric.last_value, metric.unit, metric.name));
      }
    }
  }
}

function showAgent(info) {
  setText(document.getElementById("received"), count(info.received));
  setText(document.getElementById("client-count"), count(info.clients.length));
  setText(document.getElementById("api-address"), info.api);
  setText(document.getElementById("faults"), info.faults);
  const pill = document.getElementById("broker-pill");
  const button = document.getElementById("cut");
  sim.cutUntil = info.cut_until;
  const left = info.cut_until ? Math.max(0, Math.ceil(info.cut_until - Date.now() / 1000)) : 0;
  if (info.broker_running) {
    setText(pill, "agent reachable");
    pill.className = "pill good";
  } else {
    setText(pill, info.cut_until ? `agent cut off (back in ${left} s)` : "agent not reachable");
    pill.className = "pill bad";
  }
  button.disabled = !info.broker_running || !!info.cut_until;
  setText(button, `Cut the agent for ${info.cut_seconds} s`);
  setText(document.getElementById("cut-note"), info.cut_until
    ? `Cut off until ${clock(info.cut_until)}: watch the outbox on the bridge's page grow, then empty.` : "");
  showClients(info.clients);
}

function drawCharts() {
  const now = Date.now();
  for (const chart of sim.charts.values()) {
    chart.trim(now);
    if (chart.canvas && !chart.canvas.hidden) {
      chart.draw(now);
      chart.canvas.dataset.points = String(chart.points.length);
      chart.canvas.dataset.late = String(chart.points.filter((p) => p[2] > LATE_MS).length);
    }
  }
}

async function tick() {
  for (let pages = 0; pages < 10; pages++) {
    const answer = await getJson(sim.lastId === null ? "/api/values" : `/api/values?after=${sim.lastId}`);
    sim.lastId = answer.last_id;
    addValues(answer.values);
    if (!answer.more) break;
  }
  showAgent(await getJson("/api/agent"));
  drawCharts();
}

document.getElementById("cut").addEventListener("click", async () => {
  const button = document.getElementById("cut");
  button.disabled = true;
  const response = await fetch("/api/cut-agent", { method: "POST", headers: { "X-Pibridge": "1" } });
  if (!response.ok && response.status !== 409) button.disabled = false;
});

poll(tick, 1000);
window.addEventListener("resize", drawCharts);

// The daemon's page: polls /api/status, /api/sensors and /api/history every second.
"use strict";

const MODES = {
  live: "Live: every reading goes straight to the agent.",
  replay: "Catching up: sending the readings from the outbox, oldest first.",
  offline: "Waiting for the agent: new readings go to the outbox.",
};
const DROP_CAUSES = {
  max_bytes: "outbox full", max_age: "too old", memory_limit: "disk not writable",
  corrupt: "damaged file", undecodable: "unreadable", unwritable_at_close: "not written at stop",
  unroutable: "no such sensor",
};

const page = { sequence: 0, charts: new Map(), built: false, windowMs: 3600000 };

function buildSensors(sensors) {
  const box = document.getElementById("sensors");
  box.replaceChildren();
  for (const sensor of sensors) {
    const metrics = el("div", { class: "metrics" });
    for (const metric of sensor.metrics) {
      const canvas = el("canvas", { class: "chart", "data-points": "0",
                                    "aria-label": `${metric.name} over the last hour` });
      const block = el("div", { class: "metric", "data-metric": metric.name },
        el("div", { class: "metric-head" },
          el("span", {}, el("span", { class: "metric-name", text: metric.name }), " ",
            el("span", { class: "metric-meta", text: metric.unit || (metric.value_type === "bool"
              ? boolWords(metric.name).join("/") : "") })),
          el("span", { class: "metric-value", text: "–" })),
        canvas);
      metrics.append(block);
      const isBool = metric.value_type === "bool";
      const isText = metric.value_type === "string";
      if (isText) canvas.hidden = true;
      page.charts.set(`${sensor.name}\u0000${metric.quantity}`, {
        chart: new LineChart(canvas, { unit: metric.unit, step: isBool, windowMs: page.windowMs,
                                       words: boolWords(metric.name),
                                       gapMs: Math.max(5000, sensor.interval * 3000) }),
        block, metric,
      });
    }
    box.append(el("article", { class: "card sensor", "data-sensor": sensor.name },
      el("div", { class: "sensor-head" },
        el("div", {},
          el("h3", { text: sensor.name }),
          el("div", { class: "hint", text: `${sensor.driver} · read every ${sensor.interval} s` })),
        el("span", { class: "pill sensor-state", text: "…" })),
      el("p", { class: "sensor-stats" }),
      el("p", { class: "problem sensor-error", hidden: "hidden" }),
      metrics));
  }
  page.built = true;
}

function showSensors(sensors) {
  for (const sensor of sensors) {
    const card = document.querySelector(`[data-sensor="${CSS.escape(sensor.name)}"]`);
    if (!card) continue;
    const state = card.querySelector(".sensor-state");
    setText(state, sensor.online ? "reading" : "offline");
    state.className = `pill sensor-state ${sensor.online ? "good" : "bad"}`;
    const when = sensor.last_timestamp_ms ? `last reading ${ago(Date.now() / 1000 - sensor.last_timestamp_ms / 1000)}` : "no reading yet";
    setText(card.querySelector(".sensor-stats"),
      `${count(sensor.reads)} readings, ${count(sensor.failures)} failed reads · ${when}`);
    const error = card.querySelector(".sensor-error");
    error.hidden = !sensor.error_streak;
    if (sensor.error_streak) {
      setText(error, `${sensor.error_streak} failed reads in a row: ${sensor.last_error}`);
    }
    for (const metric of sensor.metrics) {
      const entry = page.charts.get(`${sensor.name}\u0000${metric.quantity}`);
      if (entry) setText(entry.block.querySelector(".metric-value"), formatValue(metric.last_value, metric.unit, metric.name));
    }
  }
}

function showStatus(info) {
  const state = info.state, agent = state.agent, delivery = state.delivery, outbox = info.outbox || {};
  const pill = document.getElementById("agent-pill");
  let text, cls;
  if (agent.revoked) { text = "agent refused this client"; cls = "bad"; }
  else if (agent.connected) { text = "agent connected"; cls = "good"; }
  else { text = "agent not connected"; cls = "bad"; }
  setText(pill, text);
  pill.className = `pill ${cls}`;
  setText(document.getElementById("agent-state"),
    agent.connected ? "Connected: readings are delivered." : agent.revoked
      ? "The agent no longer accepts this client (it was deleted there)."
      : "Not connected: readings are kept in the outbox until the agent is back.");
  setText(document.getElementById("agent-client"), state.client_id || "(not provisioned yet)");
  setText(document.getElementById("agent-address"), `${agent.host}:${agent.port}`);
  setText(document.getElementById("agent-since"), agent.connected_since ? `${clock(agent.connected_since)} (${ago(Date.now() / 1000 - agent.connected_since)})` : "–");
  setText(document.getElementById("agent-last"), agent.last_contact ? ago(Date.now() / 1000 - agent.last_contact) : "never");
  setText(document.getElementById("agent-reconnects"), count(agent.reconnects));
  const problem = document.getElementById("agent-problem");
  problem.hidden = !agent.problem || agent.connected;
  if (agent.problem) setText(problem, agent.problem);

  setText(document.getElementById("outbox-depth"), count(outbox.depth));
  setText(document.getElementById("outbox-oldest"),
    outbox.oldest_age_s === null || outbox.oldest_age_s === undefined ? "–" : `taken ${ago(outbox.oldest_age_s)}`);
  setText(document.getElementById("outbox-bytes"), bytes(outbox.bytes || 0));
  const causes = Object.entries(outbox.dropped_reason || {}).filter(([, n]) => n);
  if (delivery.unroutable) causes.push(["unroutable", delivery.unroutable]);
  const dropped = causes.reduce((sum, [, n]) => sum + n, 0);
  setText(document.getElementById("outbox-dropped"), dropped
    ? `${count(dropped)} (${causes.map(([c, n]) => `${DROP_CAUSES[c] || c}: ${count(n)}`).join(", ")})` : "0");
  document.getElementById("outbox-card").classList.toggle("warn", (outbox.depth || 0) > 0);
  document.getElementById("agent-card").classList.toggle("bad", !agent.connected);

  setText(document.getElementById("delivery-mode"), MODES[delivery.mode] || delivery.mode);
  setText(document.getElementById("delivery-pushed"), count(delivery.delivered));
  setText(document.getElementById("delivery-replayed"), count(delivery.replayed));
  setText(document.getElementById("delivery-spilled"), count(delivery.buffered));
  setText(document.getElementById("delivery-refused"), count(delivery.refused));
}

function addHistory(history) {
  page.sequence = history.sequence;
  for (const [sensor, metrics] of Object.entries(history.points)) {
    for (const [quantity, points] of Object.entries(metrics)) {
      const entry = page.charts.get(`${sensor}\u0000${quantity}`);
      if (entry) entry.chart.add(points);
    }
  }
}

function drawCharts() {
  const now = Date.now();
  for (const { chart } of page.charts.values()) {
    chart.trim(now);
    if (!chart.canvas.hidden) chart.draw(now);
    chart.canvas.dataset.points = String(chart.points.length);
  }
}

async function tick() {
  const [status, sensors] = await Promise.all([getJson("/api/status"), getJson("/api/sensors")]);
  if (!page.built) {
    const first = await getJson("/api/history?after=0");
    page.windowMs = first.window_s * 1000;
    buildSensors(sensors);
    addHistory(first);
  } else {
    addHistory(await getJson(`/api/history?after=${page.sequence}`));
  }
  showStatus(status);
  showSensors(sensors);
  drawCharts();
}

poll(tick, 1000);
window.addEventListener("resize", drawCharts);

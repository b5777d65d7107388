// Helpers shared by the daemon's and the simulator's page.
"use strict";

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// el("div", {class: "card"}, "text", child, ...): a new element.
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  seconds = Math.max(0, seconds);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86400).toFixed(1)} days ago`;
}

function clock(unixSeconds) {
  if (!unixSeconds) return "–";
  return new Date(unixSeconds * 1000).toLocaleTimeString();
}

// Words for false and true: a door or window contact reads true when closed, anything else is on/off.
function boolWords(name) {
  return /contact|door|window/i.test(name || "") ? ["open", "closed"] : ["off", "on"];
}

function formatValue(value, unit, name) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return boolWords(name)[value ? 1 : 0];
  if (typeof value === "number") {
    const shown = Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
    return unit ? `${shown} ${unit}` : shown;
  }
  return String(value);
}

function count(n) {
  return (n || 0).toLocaleString("en-US");
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// Calls `tick` now and then every `ms`, never twice at once; shows a banner while the server is away.
function poll(tick, ms) {
  const banner = document.getElementById("offline-banner");
  let running = false;
  async function once() {
    if (running) return;
    running = true;
    try {
      await tick();
      banner.hidden = true;
    } catch (error) {
      banner.hidden = false;
      setText(banner, `This page cannot reach ${location.host} right now (${error.message}); retrying…`);
    } finally {
      running = false;
    }
  }
  once();
  return setInterval(once, ms);
}

// A small line chart on a <canvas>: time on the x axis, one metric on the y axis.
// Lines break where readings are missing (longer than `gapMs` apart), so an outage
// shows as a gap; points drawn with `marked(point)` true get a second colour
// (on the simulator's page: values that arrived late, replayed from the outbox).
// Pointing at the chart shows the nearest reading's value and time.
"use strict";

class LineChart {
  constructor(canvas, options) {
    this.canvas = null;
    this.hoverX = null;
    this.lastNow = Date.now();
    this.unit = options.unit || "";
    this.step = !!options.step;          // true/false metrics: a step line between 0 and 1
    this.words = options.words || ["off", "on"];
    this.gapMs = options.gapMs || 10000;
    this.windowMs = options.windowMs || 600000;
    this.marked = options.marked || null;
    this.points = [];                    // [[timestamp_ms, value, extra], ...] oldest first
    this.colors = { line: "#2563eb", fill: "rgba(37, 99, 235, 0.08)", marked: "#d97706",
                    grid: "#e5e7eb", text: "#6b7280" };
    if (canvas) this.bind(canvas);
  }

  bind(canvas) {
    this.canvas = canvas;
    canvas.addEventListener("mousemove", (event) => { this.hoverX = event.offsetX; this.draw(this.lastNow); });
    canvas.addEventListener("mouseleave", () => { this.hoverX = null; this.draw(this.lastNow); });
  }

  add(points) {
    for (const p of points) this.points.push(p);
    // Replayed values arrive after newer live ones: keep the chart in time order.
    this.points.sort((a, b) => a[0] - b[0]);
  }

  trim(nowMs) {
    const oldest = nowMs - this.windowMs;
    let i = 0;
    while (i < this.points.length && this.points[i][0] < oldest) i++;
    if (i) this.points.splice(0, i);
  }

  draw(nowMs) {
    this.lastNow = nowMs;
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 120;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    const left = 52, right = 8, top = 8, bottom = 20;
    const plotW = Math.max(10, width - left - right), plotH = Math.max(10, height - top - bottom);
    // Until the window is full the chart spans what there is (at least two minutes), so the
    // first readings are not squeezed against the right edge.
    const oldest = this.points.length ? this.points[0][0] : nowMs;
    const spanMs = Math.min(this.windowMs, Math.max(120000, Math.ceil((nowMs - oldest) / 60000) * 60000));
    const t1 = nowMs, t0 = nowMs - spanMs;
    const visible = this.points.filter((p) => p[0] >= t0 && p[0] <= t1 + 60000);

    let lo, hi;
    if (this.step) { lo = -0.15; hi = 1.15; }
    else if (visible.length) {
      lo = Math.min(...visible.map((p) => p[1]));
      hi = Math.max(...visible.map((p) => p[1]));
      const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.05 || 1;
      lo -= pad; hi += pad;
    } else { lo = 0; hi = 1; }
    const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => top + plotH - ((v - lo) / (hi - lo)) * plotH;

    ctx.strokeStyle = this.colors.grid;
    ctx.fillStyle = this.colors.text;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const ticks = this.step ? [0, 1] : niceTicks(lo, hi, 4);
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + plotW, yy); ctx.stroke();
      const label = this.step ? this.words[v ? 1 : 0] : formatTick(v);
      ctx.fillText(label, left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const minutes = spanMs / 60000;
    const every = minutes <= 3 ? 0.5 : minutes <= 10 ? 2 : minutes <= 30 ? 5 : minutes <= 120 ? 15 : 60;
    for (let m = 0; m <= minutes + 1e-9; m += every) {
      const xx = Math.round(x(t1 - m * 60000)) + 0.5;
      ctx.beginPath(); ctx.moveTo(xx, top); ctx.lineTo(xx, top + plotH); ctx.stroke();
      ctx.textAlign = m === 0 ? "right" : "center";
      const label = m === 0 ? "now" : m < 1 ? `-${m * 60} s` : `-${m} min`;
      ctx.fillText(label, m === 0 ? xx + 2 : xx, top + plotH + 4);
    }
    ctx.textAlign = "center";

    if (!visible.length) {
      ctx.textBaseline = "middle";
      ctx.fillText("waiting for readings…", left + plotW / 2, top + plotH / 2);
      return;
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(left, top, plotW, plotH); ctx.clip();
    ctx.strokeStyle = this.colors.line;
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    let previous = null;
    for (const p of visible) {
      const px = x(p[0]), py = y(p[1]);
      if (previous === null || p[0] - previous[0] > this.gapMs) ctx.moveTo(px, py);
      else if (this.step) { ctx.lineTo(px, y(previous[1])); ctx.lineTo(px, py); }
      else ctx.lineTo(px, py);
      previous = p;
    }
    ctx.stroke();
    const radius = visible.length > 200 ? 1.2 : 2.2;
    for (const p of visible) {
      const isMarked = this.marked && this.marked(p);
      ctx.fillStyle = isMarked ? this.colors.marked : this.colors.line;
      ctx.beginPath(); ctx.arc(x(p[0]), y(p[1]), isMarked ? radius + 0.6 : radius, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.restore();
    if (this.hoverX !== null) this.drawHover(ctx, visible, x, y, top, plotH, left, plotW);
  }

  drawHover(ctx, visible, x, y, top, plotH, left, plotW) {
    let nearest = visible[0];
    for (const p of visible) if (Math.abs(x(p[0]) - this.hoverX) < Math.abs(x(nearest[0]) - this.hoverX)) nearest = p;
    const px = x(nearest[0]), py = y(nearest[1]);
    ctx.strokeStyle = "#9ca3af";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(Math.round(px) + 0.5, top); ctx.lineTo(Math.round(px) + 0.5, top + plotH); ctx.stroke();
    ctx.fillStyle = this.colors.line;
    ctx.beginPath(); ctx.arc(px, py, 4, 0, 2 * Math.PI); ctx.fill();
    const value = this.step ? this.words[nearest[1] ? 1 : 0]
      : `${Number(nearest[1].toPrecision(4))}${this.unit ? " " + this.unit : ""}`;
    const late = this.marked && this.marked(nearest) ? ", arrived late" : "";
    const label = `${value} at ${new Date(nearest[0]).toLocaleTimeString()}${late}`;
    ctx.font = "12px system-ui, sans-serif";
    const width = ctx.measureText(label).width + 12;
    const boxX = Math.min(Math.max(left, px - width / 2), left + plotW - width);
    ctx.fillStyle = "rgba(31, 41, 55, 0.92)";
    ctx.fillRect(boxX, top, width, 20);
    ctx.fillStyle = "#ffffff";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(label, boxX + 6, top + 10);
  }
}

function niceTicks(lo, hi, count) {
  const span = hi - lo;
  const raw = span / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(v) {
  const a = Math.abs(v);
  if (a >= 10000) return v.toExponential(1);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return Number(v.toFixed(2)).toString();
  return Number(v.toPrecision(2)).toString();
}

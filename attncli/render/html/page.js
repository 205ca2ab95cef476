// attncli's HTML page: head view, matrix view, model view and explain trace, from the data block.
// Text from the data (tokens, file names, keys) is only ever set with textContent or
// createTextNode; no innerHTML anywhere.
(function () {
  "use strict";

  // Controls, format (bidi, zero-width) and separator characters shown as escapes, as the
  // terminal views show them (attncli/visible.py): a token "\u202e…" cannot reorder the page.
  function visible(text) {
    return String(text).replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu, (c) => {
      const named = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }[c];
      if (named) return named;
      const code = c.codePointAt(0), hex = code.toString(16);
      if (code < 0x100) return "\\x" + hex.padStart(2, "0");
      return code < 0x10000 ? "\\u" + hex.padStart(4, "0") : "\\U" + hex.padStart(8, "0");
    });
  }

  const data = JSON.parse(document.getElementById("attncli-data").textContent);
  const page = data.html;
  // what the page shows of the data's text; the data block itself keeps it exactly
  for (const run of [data, page.run]) {
    if (!run) continue;
    for (const key of ["tokens", "kv_tokens"]) {
      if (Array.isArray(run[key])) run[key] = run[key].map(visible);
    }
  }
  if (typeof data.token === "string") data.token = visible(data.token);
  for (const key of ["command", "summary", "header"]) {
    if (typeof page[key] === "string") page[key] = visible(page[key]);
  }
  const app = document.getElementById("app");
  const SVGNS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"];
  const precision = page.precision === undefined ? 4 : page.precision;

  // ---- small DOM helpers -------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  function headColour(h, count) {
    return count <= PALETTE.length ? PALETTE[h] : `hsl(${(h * 360) / count} 65% 45%)`;
  }

  // ---- numbers written as attn explain writes them ------------------------------------------
  function num(v) {
    if (v === null || v === -Infinity) return "-∞";
    if (v === Infinity) return "∞";
    let s = v.toFixed(precision);
    if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s === "-0" || s === "" ? "0" : s;
  }
  function factor(v) {
    const s = num(v);
    return s.startsWith("-") ? `(${s})` : s;
  }
  function elide(n, limit, head, tail) {
    if (n <= limit) return [...Array(n).keys()];
    const out = [...Array(head).keys(), null];
    for (let i = n - tail; i < n; i++) out.push(i);
    return out;
  }
  function dot(a, b, total) {
    const terms = elide(a.length, 8, 3, 2).map((k) =>
      k === null ? "…" : `${factor(a[k])}×${factor(b[k])}`);
    if (terms[0].startsWith("(")) terms[0] = terms[0].slice(1).replace(")×", "×");
    const count = a.length > 8 ? ` (${a.length} terms)` : "";
    return `${terms.join(" + ")}${count} = ${num(total)}`;
  }
  function close(a, b) {
    return Math.abs(a - b) <= 1e-3 * (1 + Math.abs(b));
  }

  // ---- the run being shown ----------------------------------------------------------------
  // view: {tokens, steps, info, layer, heads (ids of the leading axis), query (narrowed row or
  // null), params, causal}
  function runView(run, layer) {
    const steps = run.steps;
    const w = steps.weights;
    const heads = w && Array.isArray(w[0][0]) ? w.map((_, h) => h) : [0];
    return {
      tokens: run.tokens, keys: run.kv_tokens || run.tokens, steps, info: page.steps || {},
      layer, heads,
      query: run.query ? run.query.index : null, params: run.params || {}, causal: false,
    };
  }
  function info(view, name) {
    const known = view.info[name];
    if (known) return known;
    const a = view.steps[name];
    const last = Array.isArray(a[0][0]) ? a[0][0].length : a[0].length;
    return { title: name, rows: "queries",
      columns: last === view.keys.length ? "keys" : "features" };
  }
  function perHead(a) {
    return Array.isArray(a[0][0]);
  }
  // Row r of a step's matrix belongs to token index...
  function tokenOfRow(view, name, r) {
    return view.query !== null && info(view, name).rows === "queries" ? view.query : r;
  }
  function rowOfToken(view, name, i) {
    if (view.query !== null && info(view, name).rows === "queries") {
      return i === view.query ? 0 : -1;
    }
    return i;
  }
  // Whether key k is masked for query token q in head slot h: null in any key-column step, or
  // beyond the diagonal (or the window) of a causal run.
  function masked(view, slot, q, k) {
    const p = view.params;  // the run's mask, also when the page shows no masked step
    if ((view.causal || p.causal) && k > q) return true;
    if (p.window && q - k >= p.window) return true;
    view.maskCache = view.maskCache || {};
    if (!view.maskCache[slot]) view.maskCache[slot] = maskRows(view, slot);
    const row = view.maskCache[slot][q];
    return row !== undefined && row[k] === 1;
  }
  // Per query token (only those the run kept), 1 where any key-column step holds null.
  function maskRows(view, slot) {
    const n = view.tokens.length, rows = {};
    for (const name of Object.keys(view.steps)) {
      if (info(view, name).columns !== "keys") continue;
      const a = view.steps[name];
      const m = perHead(a) ? a[slot] : a;
      m.forEach((values, r) => {
        const q = tokenOfRow(view, name, r);
        const row = rows[q] || (rows[q] = new Uint8Array(n));
        values.forEach((v, k) => { if (v === null) row[k] = 1; });
      });
    }
    return rows;
  }

  // ---- header, tabs, legend ---------------------------------------------------------------
  function header(title) {
    const box = el("header", {},
      el("h1", {}, title),
      el("p", { class: "summary", id: "summary" }, page.summary || ""));
    if (page.command) {
      box.appendChild(el("p", { class: "command" }, "made by ", el("code", { id: "command" },
        page.command)));
    }
    for (const note of data.notes || []) box.appendChild(el("p", { class: "note" }, "note: " + note));
    return box;
  }
  const views = {};
  const tabs = el("nav", { id: "tabs" });
  function addView(key, label) {
    const section = el("section", { id: `view-${key}`, class: "view" });
    section.hidden = true;
    const button = el("button", { type: "button", "data-view": key }, label);
    button.addEventListener("click", () => show(key));
    tabs.appendChild(button);
    app.appendChild(section);
    views[key] = section;
    return section;
  }
  function show(key) {
    for (const [k, section] of Object.entries(views)) section.hidden = k !== key;
    for (const b of tabs.querySelectorAll("button")) {
      b.classList.toggle("active", b.dataset.view === key);
    }
  }
  function legend() {
    const precisionNote = page.kind === "model"
      ? `Weights are stored with ${page.weights.bits}-bit precision (steps of ` +
        `${(1 / (2 ** page.weights.bits - 1)).toPrecision(2)}).`
      : "Values are the run's exact numbers, as --format json writes them.";
    return el("div", { class: "legend", id: "legend" },
      el("span", { class: "swatch seq" }), " weights 0 → 1   ",
      el("span", { class: "swatch div" }), " other steps: negative · 0 · positive (per panel)   ",
      el("span", { class: "swatch masked" }), " masked (-∞, weight 0)   ",
      el("span", { class: "precision" }, precisionNote));
  }

  // ---- tooltips ---------------------------------------------------------------------------
  const tip = el("div", { id: "tip", role: "tooltip" });
  tip.hidden = true;
  function showTip(text, x, y) {
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.min(x + 14, window.innerWidth - 420)}px`;
    tip.style.top = `${y + 14}px`;
  }

  // ---- head view --------------------------------------------------------------------------
  function headView(section, view) {
    section.replaceChildren();
    const w = view.steps.weights;
    if (!w) {
      section.appendChild(el("p", {}, "This run has no attention weights to draw."));
      return;
    }
    const n = view.tokens.length, m = view.keys.length;  // they differ in cross-attention
    const active = new Set([0]);
    let selected = view.query !== null ? view.query : 0;
    const picker = el("div", { class: "heads", id: "head-picker" }, "heads: ");
    view.heads.forEach((id, slot) => {
      const box = el("input", { type: "checkbox", "data-head": id });
      box.checked = active.has(slot);
      box.addEventListener("change", () => {
        if (box.checked) active.add(slot); else active.delete(slot);
        draw();
      });
      picker.appendChild(el("label", { class: "head-choice" }, box,
        el("span", { class: "dot", style: `background:${headColour(slot, view.heads.length)}` }),
        ` ${id}`));
    });
    const rowH = 22, left = 220, right = 400, width = 560;
    const drawing = svg("svg", { id: "head-svg", width, height: Math.max(n, m) * rowH + 10,
      "data-layer": view.layer, "data-head": view.heads.join(" ") });
    const lines = svg("g", { class: "lines" });
    drawing.appendChild(lines);
    const queryLabels = [], keyLabels = [], keyValues = [];
    for (let i = 0; i < n; i++) {
      const q = svg("text", { x: left - 8, y: i * rowH + 16, "text-anchor": "end",
        class: "tok query", "data-token-index": i, "data-side": "query" });
      q.appendChild(document.createTextNode(view.tokens[i]));
      const usable = view.query === null || view.query === i;
      if (!usable) q.classList.add("unavailable");
      const pick = () => { if (usable && selected !== i) { selected = i; draw(); } };
      q.addEventListener("click", pick);
      q.addEventListener("mouseenter", pick);
      drawing.append(q);
      queryLabels.push(q);
    }
    for (let j = 0; j < m; j++) {
      const y = j * rowH + 16;
      const k = svg("text", { x: right + 8, y, class: "tok key", "data-token-index": j,
        "data-side": "key" });
      k.appendChild(document.createTextNode(view.keys[j]));
      const v = svg("text", { x: width - 4, y, "text-anchor": "end", class: "val" });
      drawing.append(k, v);
      keyLabels.push(k); keyValues.push(v);
    }
    function weightsOf(slot) {
      const m = perHead(w) ? w[slot] : w;
      return m[rowOfToken(view, "weights", selected)];
    }
    function draw() {
      lines.replaceChildren();
      const slots = [...active].sort((a, b) => a - b);
      queryLabels.forEach((label, i) => label.classList.toggle("selected", i === selected));
      for (let j = 0; j < m; j++) {
        const hidden = slots.length > 0 && slots.every((s) => masked(view, s, selected, j));
        keyLabels[j].classList.toggle("masked", hidden);
        keyValues[j].textContent = "";
      }
      slots.forEach((slot, rank) => {
        const row = weightsOf(slot);
        const colour = headColour(slot, view.heads.length);
        const dy = 11 + (rank - (slots.length - 1) / 2) * 3;  // heads side by side
        for (let k = 0; k < m; k++) {
          if (masked(view, slot, selected, k)) continue;
          const weight = row[k] === null ? 0 : row[k];
          lines.appendChild(svg("line", {
            x1: left, y1: selected * rowH + dy, x2: right, y2: k * rowH + dy,
            stroke: colour, "stroke-opacity": weight.toFixed(4), "stroke-width": 2.5,
            "data-head": view.heads[slot], "data-key": k,
          }));
          if (slots.length === 1) keyValues[k].textContent = num(weight);
        }
      });
      drawing.dataset.query = selected;
    }
    if (page.kind === "model") {
      section.appendChild(el("h3", { id: "head-caption" },
        `layer ${view.layer}, head ${view.heads[0]}`));
    }
    section.append(
      el("p", { class: "help" }, "Click or hover a token on the left: lines go to every key, " +
        "as opaque as its weight. Tick several heads to compare them; masked keys are struck " +
        "through and get no line."),
      picker, drawing);
    draw();
  }

  // ---- matrix view ------------------------------------------------------------------------
  function colourScale(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo >= 0 && hi <= 1) {  // weights-like: white to blue
      return (v) => [255 - v * 247, 255 - v * 207, 255 - v * 148];
    }
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return (v) => {
      const t = Math.min(1, Math.abs(v) / m);
      return v >= 0 ? [255, 255 - t * 200, 255 - t * 210] : [255 - t * 210, 255 - t * 150, 255];
    };
  }
  function paint(canvas, rows, cols, valueAt, isMasked) {
    canvas.width = cols;
    canvas.height = rows;
    const flat = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) flat.push(valueAt(r, c));
    const scale = colourScale(flat);
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    for (let r = 0, p = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++, p += 4) {
        const v = flat[r * cols + c];
        const rgb = v === null || isMasked(r, c) ? [200, 200, 200] : scale(v);
        img.data[p] = rgb[0]; img.data[p + 1] = rgb[1]; img.data[p + 2] = rgb[2];
        img.data[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function arithmetic(view, name, slot, r, c) {
    const steps = view.steps, p = view.params;
    const i = tokenOfRow(view, name, r);
    const me = view.tokens[i], key = view.keys[c];
    const hd = p.head_dim, multi = perHead(steps.weights || [[0]]);
    const cols = (row) => (multi ? row.slice(slot * hd, (slot + 1) * hd) : row);
    const rowOf = (step, token) => {
      const a = steps[step];
      if (!a) return null;
      const m = perHead(a) ? a[slot] : a;
      const rr = rowOfToken(view, step, token);
      return rr < 0 ? null : m[rr];
    };
    const value = (perHead(steps[name]) ? steps[name][slot] : steps[name])[r][c];
    const out = [];
    if (name === "scores" && steps.queries && steps.keys) {
      const q = cols(rowOf("queries", i)), k = cols(steps.keys[c]);
      let sum = 0;
      for (let t = 0; t < q.length; t++) sum += q[t] * k[t];
      if (close(sum, value)) out.push(`ω(${me}, ${key}) = ${dot(q, k, value)}`);
    } else if (name === "scaled_scores" && steps.scores) {
      const by = p.scale_dim || hd;  // a model's own constant (Gemma) or d_k
      const f = 1 / Math.sqrt(by), s = rowOf("scores", i)[c];
      if (close(s * f, value)) {
        out.push(p.scale_dim ? `scaled by the model's 1/√${by} = ${num(f)}`
          : `d_k = ${hd},  1/√d_k = ${num(f)}`, `${num(s)} × ${num(f)} = ${num(value)}`);
      }
    } else if (name === "capped_scores" && p.softcap) {
      const row = rowOf(p.scale ? "scaled_scores" : "scores", i);  // the step capping reads
      const before = row ? row[c] : null;
      const C = p.softcap;
      if (before !== null && close(Math.tanh(before / C) * C, value)) {
        out.push(`C = ${num(C)}: scores are squashed to at most C in size`,
          `tanh(${num(before)} / ${num(C)}) × ${num(C)} = ${num(value)}`);
      }
    } else if (name === "masked_scores") {
      out.push(value === null ? `${key} is masked for ${me}: -∞, so its weight will be 0`
        : `${key} is visible to ${me}: the score passes unchanged`);
    } else if (name === "weights" || name === "weights_before_dropout") {
      if (name === "weights" && steps.weights_before_dropout) {
        const before = rowOf("weights_before_dropout", i)[c];
        out.push(value === 0 && before !== 0 ? `dropped: ${num(before)} → 0`
          : `kept: ${num(before)} / (1 − ${p.dropout}) = ${num(value)}`);
      } else {
        out.push(...softmaxLines(view, name, slot, i, c, rowOf));
      }
    } else if (((name === "context" && !multi) || name === "head_context") && steps.weights &&
        steps.values) {
      const h = multi ? Math.floor(c / hd) : 0;
      const wRow = (perHead(steps.weights) ? steps.weights[h] : steps.weights)[
        rowOfToken(view, "weights", i)];
      const v = steps.values.map((row) => row[c]);
      let sum = 0;
      for (let t = 0; t < v.length; t++) sum += (wRow[t] || 0) * v[t];
      if (close(sum, value)) out.push(`z[${multi ? c - h * hd : c}] = ${dot(wRow.map((x) => x || 0), v, value)}`);
    }
    return out;
  }
  // The softmax of the last key-column step before the weights, as attn explain writes it.
  function softmaxLines(view, name, slot, i, c, rowOf) {
    const order = Object.keys(view.steps);
    let input = null;
    for (const s of order.slice(0, order.indexOf(name))) {
      if (info(view, s).columns === "keys") input = s;
    }
    if (!input) return [];
    // one prime for each change the run made to the scores before this step (scaling,
    // soft-capping), whichever steps the page shows
    const p = view.params;
    const primes = input === "scores" ? 0 : input === "scaled_scores" ? 1
      : (p.scale ? 1 : 0) + (p.softcap ? 1 : 0);
    const sym = "ω" + "'".repeat(primes);
    const s = rowOf(input, i), w = rowOf(name, i);
    const seen = s.map((v, k) => v !== null && !masked(view, slot, i, k));
    const me = view.tokens[i], key = view.keys[c];
    if (!seen[c]) return [`exp(-∞) = 0  (${key} is masked)`, `α(${me}, ${key}) = 0  (masked)`];
    const m = Math.max(...s.filter((_, k) => seen[k]));
    const exps = s.map((v, k) => (seen[k] ? Math.exp(v - m) : 0));
    const total = exps.reduce((a, b) => a + b, 0);
    if (!close(exps[c] / total, w[c])) return [];
    return [
      `m = max_j ${sym}_j = ${num(m)}  (subtracted first; the weights do not change)`,
      `exp(${num(s[c])} − ${factor(m)}) = ${num(exps[c])}`,
      `Σ = ${num(total)}`,
      `α(${me}, ${key}) = ${num(exps[c])} / ${num(total)} = ${num(w[c])}`,
    ];
  }

  function matrixPanel(view, name, slot) {
    const a = view.steps[name];
    const m = perHead(a) ? a[slot] : a;
    const kind = info(view, name);
    const rows = m.length, cols = m[0].length;
    const cs = Math.max(1, Math.min(28, Math.floor(640 / cols), Math.floor(1400 / rows)));
    const attrs = { class: "panel", "data-step": name };
    if (kind.columns === "keys") {
      attrs["data-layer"] = view.layer;
      attrs["data-head"] = view.heads[slot];
    }
    const panel = el("div", attrs);
    const title = perHead(a) || kind.columns === "keys" && view.heads.length > 1
      ? `${name} · head ${view.heads[slot]}` : name;
    panel.appendChild(el("div", { class: "panel-title" }, title));
    const grid = el("div", { class: "grid" });
    const canvas = el("canvas", { class: "heat" });
    canvas.style.width = `${cols * cs}px`;
    canvas.style.height = `${rows * cs}px`;
    const isMasked = (r, c) => kind.columns === "keys" &&
      masked(view, slot, tokenOfRow(view, name, r), c);
    paint(canvas, rows, cols, (r, c) => m[r][c], isMasked);
    const corner = el("div", { class: "corner" });
    const colLabels = el("div", { class: "col-labels" });
    const rowLabels = el("div", { class: "row-labels" });
    // Every label while a cell is tall enough for text, else every k-th (like attn plot).
    const every = Math.ceil(11 / cs);
    const sparse = every > 1 ? " sparse" : "";
    for (let c = 0; c < cols; c += every) {
      const span = Math.min(every, cols - c) * cs;
      const attrs2 = { class: "lbl col" + sparse, style: `width:${span}px` };
      if (kind.columns === "keys") attrs2["data-token-index"] = c;
      colLabels.appendChild(el("div", attrs2, kind.columns === "keys" ? view.keys[c] : `d${c}`));
    }
    for (let r = 0; r < rows; r += every) {
      const span = Math.min(every, rows - r) * cs;
      const i = kind.rows === "queries" ? tokenOfRow(view, name, r) : r;
      rowLabels.appendChild(el("div", { class: "lbl row" + sparse, style: `height:${span}px`,
        "data-token-index": i }, kind.rows === "queries" ? view.tokens[i] : view.keys[i]));
    }
    const wrap = el("div", { class: "heat-wrap" }, canvas);
    const mark = el("div", { class: "row-mark" });
    mark.hidden = true;
    wrap.appendChild(mark);
    grid.append(corner, colLabels, rowLabels, wrap);
    panel.appendChild(grid);
    canvas.addEventListener("mousemove", (e) => {
      const r = Math.min(rows - 1, Math.floor(e.offsetY / cs));
      const c = Math.min(cols - 1, Math.floor(e.offsetX / cs));
      const i = tokenOfRow(view, name, r);
      const colName = kind.columns === "keys" ? view.keys[c] : `d${c}`;
      const rowName = kind.rows === "queries" ? view.tokens[i] : view.keys[r];
      const v = m[r][c];
      const head = perHead(a) || (kind.columns === "keys" && view.heads.length > 1)
        ? ` · head ${view.heads[slot]}` : "";
      const hidden = kind.columns === "keys" && v !== null && isMasked(r, c) ? "  (masked)" : "";
      const lines = [`${name}${head}  [${rowName}, ${colName}]${hidden}`,
        `value: ${v === null ? "-∞ (masked)" : String(v)}`];
      lines.push(...arithmetic(view, name, slot, r, c));
      showTip(lines.join("\n"), e.clientX, e.clientY);
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    panel.markRow = (r) => {
      mark.hidden = false;
      mark.style.top = `${r * cs}px`;
      mark.style.height = `${cs}px`;
      mark.style.width = `${cols * cs}px`;
    };
    return panel;
  }

  function matrixView(section, view) {
    section.replaceChildren(el("p", { class: "help" }, "Every step of the run, with tokens on " +
      "the axes. Hover a cell for its exact value and, for scores, weights and context, the " +
      "arithmetic behind it (the numbers attn explain prints)."));
    for (const name of Object.keys(view.steps)) {
      const a = view.steps[name];
      const box = el("div", { class: "step", id: `step-${name}` },
        el("h3", {}, `${name}`, el("span", { class: "step-title" }, `  ${info(view, name).title}`)));
      const panels = el("div", { class: "panels" });
      const count = perHead(a) ? a.length : 1;
      for (let slot = 0; slot < count; slot++) panels.appendChild(matrixPanel(view, name, slot));
      box.appendChild(panels);
      section.appendChild(box);
    }
  }

  // ---- explain ----------------------------------------------------------------------------
  const SECTION_STEP = { dropout: "weights", output: "context" };
  function explainView(section, view) {
    const math = document.getElementById("attncli-math");
    section.appendChild(el("h2", {}, `Query “${data.token}” (token ${data.query})`));
    data.sections.forEach((s, n) => {
      let step = SECTION_STEP[s.key] || s.key;
      if (s.key === "context" && s.head !== null) step = "head_context";
      const box = el("section", { class: "trace", "data-key": s.key,
        "data-head": s.head === null ? "" : s.head },
        el("h3", {}, `${n + 1}. ${s.title}`));
      const formula = math && math.querySelector(`[data-section="${n}"]`);
      if (formula) box.appendChild(formula.firstElementChild);
      box.appendChild(el("p", { class: "formula-text" }, s.formula));
      box.appendChild(el("p", { class: "why" }, s.why));
      if (s.lines.length) box.appendChild(el("pre", {}, s.lines.join("\n")));
      for (const vec of s.results) {
        const table = el("table", { class: "vec" });
        table.appendChild(el("tr", {}, el("th", {}, vec.name),
          ...vec.labels.map((l) => el("th", {}, visible(l)))));
        table.appendChild(el("tr", {}, el("td", {}), ...vec.values.map((v) => el("td", {}, num(v)))));
        box.appendChild(table);
      }
      if (view.steps[step]) {
        const link = el("button", { type: "button", class: "cells" }, `show the cells in ${step}`);
        link.addEventListener("click", () => {
          show("matrix");
          const slot = s.head === null ? 0 : s.head;
          const panels = document.querySelectorAll(`#view-matrix .panel[data-step="${step}"]`);
          const panel = panels[Math.min(slot, panels.length - 1)];
          panel.markRow(rowOfToken(view, step, data.query));
          panel.scrollIntoView({ block: "center" });
        });
        box.appendChild(link);
      }
      section.appendChild(box);
    });
  }

  // ---- model view -------------------------------------------------------------------------
  async function unpack(packed) {
    const bytes = Uint8Array.from(atob(packed.data), (ch) => ch.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const buffer = await new Response(stream).arrayBuffer();
    return packed.bits === 16 ? new Uint16Array(buffer) : new Uint8Array(buffer);
  }
  function modelView(section, ints, openHead) {
    const [L, H, n] = page.weights.shape;
    const top = 2 ** page.weights.bits - 1;
    section.appendChild(el("p", { class: "help" }, `Every head's weights (${n} tokens): rows ` +
      "are queries, columns keys. Click a head to open it in the head and matrix views. " +
      `Weights are stored with ${page.weights.bits}-bit precision (steps of ` +
      `${(1 / top).toPrecision(2)}); attn model --layer L --head H --format json gives them ` +
      "exactly."));
    const table = el("table", { class: "model-grid" });
    table.appendChild(el("tr", {}, el("th", {}), ...page.heads.map((h) => el("th", {}, `head ${h}`))));
    for (let l = 0; l < L; l++) {
      const tr = el("tr", {}, el("th", {}, `layer ${page.layers[l]}`));
      for (let h = 0; h < H; h++) {
        const canvas = el("canvas", { class: "thumb" });
        canvas.width = n; canvas.height = n;
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(n, n);
        const base = (l * H + h) * n * n;
        for (let p = 0; p < n * n; p++) {
          const v = ints[base + p] / top;
          img.data[4 * p] = 255 - v * 247; img.data[4 * p + 1] = 255 - v * 207;
          img.data[4 * p + 2] = 255 - v * 148; img.data[4 * p + 3] = 255;
        }
        ctx.putImageData(img, 0, 0);
        const cell = el("div", { class: "panel thumb-panel", "data-layer": page.layers[l],
          "data-head": page.heads[h], title: `layer ${page.layers[l]} head ${page.heads[h]}` },
          canvas);
        cell.addEventListener("click", () => openHead(l, h));
        canvas.addEventListener("mousemove", (e) => {
          const r = Math.min(n - 1, Math.floor((e.offsetY * n) / canvas.clientHeight));
          const c = Math.min(n - 1, Math.floor((e.offsetX * n) / canvas.clientWidth));
          showTip(`layer ${page.layers[l]}, head ${page.heads[h]}  [${data.tokens[r]}, ` +
            `${data.tokens[c]}]\nweight: ${num(ints[base + r * n + c] / top)}`, e.clientX,
          e.clientY);
        });
        canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
        tr.appendChild(el("td", {}, cell));
      }
      table.appendChild(tr);
    }
    section.appendChild(table);
  }
  function headRun(ints, l, h) {
    const [, H, n] = page.weights.shape;
    const top = 2 ** page.weights.bits - 1;
    const base = (l * H + h) * n * n;
    const weights = [];
    for (let r = 0; r < n; r++) {
      const row = new Array(n);
      for (let c = 0; c < n; c++) row[c] = ints[base + r * n + c] / top;
      weights.push(row);
    }
    return {
      tokens: data.tokens, keys: data.tokens, steps: { weights }, layer: page.layers[l],
      heads: [page.heads[h]],
      query: null, params: {}, causal: page.causal,
      info: { weights: { title: `attention weights, layer ${page.layers[l]} head ` +
        `${page.heads[h]} (stored at ${page.weights.bits}-bit precision)`,
        rows: "queries", columns: "keys" } },
    };
  }

  // ---- the page ---------------------------------------------------------------------------
  async function main() {
    const titles = { compute: "attncli · attention", explain: "attncli · explain",
      model: "attncli · model view" };
    app.append(header(titles[page.kind] || "attncli"), tabs, legend(), tip);
    if (page.kind === "model") {
      const modelSection = addView("model", "Model view");
      const head = addView("head", "Head view");
      const matrix = addView("matrix", "Matrix view");
      const ints = await unpack(page.weights);
      const openHead = (l, h) => {
        const view = headRun(ints, l, h);
        headView(head, view);
        matrixView(matrix, view);
        show("head");
      };
      modelView(modelSection, ints, openHead);
      headView(head, headRun(ints, 0, 0));
      matrixView(matrix, headRun(ints, 0, 0));
      show("model");
    } else {
      const run = page.kind === "explain" ? page.run : data;
      const view = runView(run, page.layer);
      let trace = null;
      if (page.kind === "explain") trace = addView("explain", "Explain");
      const head = addView("head", "Head view");
      const matrix = addView("matrix", "Matrix view");
      if (trace) explainView(trace, view);
      headView(head, view);
      matrixView(matrix, view);
      show(trace ? "explain" : "head");
    }
    document.body.dataset.readyMs = performance.now().toFixed(0);  // for benchmarks/html.py
    document.body.dataset.ready = "1";
  }
  main().catch((e) => {
    app.appendChild(el("p", { class: "error" }, `attncli: the page could not be drawn: ${e}`));
    console.error(e);
  });
})();

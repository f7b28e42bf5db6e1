// heed attention views: window.HeedAttention.render(container, json) draws the attention JSON of
// app/inference/attention.h (heed attention --json, the server's /v1/models/NAME/attention).
// Plain ES2017, no dependencies, no network. Styles: attention.css (classes under .heed-attention).
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var ROW = 20;           // px per token row in the head view
  var MIN_LINE = 0.01;    // head view: weights below this are not drawn unless a token is selected
  var HEAD_COLORS = ["#1f5fa8", "#b3470d", "#2a7d2a", "#a3213a", "#6a3d9a", "#7a5a00", "#007a7a", "#8c2d6e",
                     "#3d5a80", "#9c4f00", "#4f6d00", "#8a1c1c", "#4b2c85", "#5c5c5c", "#006d5b", "#7b3f61"];

  var uid = 0;
  function nextId(prefix) { uid += 1; return "heed-" + prefix + "-" + uid; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.setAttribute("class", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
  }
  function append(node, children) {
    if (!children) return;
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }

  // A token as a short visible label: the leading space (word start) dropped, blanks shown.
  function label(token) {
    var t = String(token).replace(/^ +/, "");
    return t.length === 0 ? "\u2423" : t;
  }
  function fmt(x) { return (Math.round(x * 1000) / 1000).toFixed(3); }
  function percent(x) { return (x * 100).toFixed(1) + "%"; }

  function requireField(json, field, type) {
    if (!(field in json)) throw new TypeError("HeedAttention.render: the attention JSON has no \"" + field + "\"");
    var value = json[field];
    if (type === "array" && !Array.isArray(value)) {
      throw new TypeError("HeedAttention.render: \"" + field + "\" must be an array");
    }
    return value;
  }

  // A labelled <select>; onChange(value) on change. Returns {wrap, select}.
  function selector(text, options, onChange) {
    var id = nextId("select");
    var select = el("select", {id: id});
    options.forEach(function (o) { select.appendChild(el("option", {value: String(o.value), text: o.text})); });
    select.addEventListener("change", function () { onChange(select.value); });
    return {wrap: el("label", {"for": id, className: "ha-control"}, [text + " ", select]), select: select};
  }

  function range(n) { var out = []; for (var i = 0; i < n; i++) out.push(i); return out; }

  // matrices[head][i][j] -> the mean over heads [i][j]
  function meanOverHeads(layer) {
    var heads = layer.length;
    return layer[0].map(function (row, i) {
      return row.map(function (_, j) {
        var s = 0;
        for (var h = 0; h < heads; h++) s += layer[h][i][j];
        return s / heads;
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Head view (bertviz style): queries on the left, keys on the right, a line per weight.
  // sources: [{name, left tokens, right tokens, attention [layer][head][i][j]}]
  function headView(sources) {
    var section = el("section", {className: "ha-section ha-head-view", "aria-label": "Head view"});
    section.appendChild(el("h2", {text: "Head view"}));
    var controls = el("div", {className: "ha-controls"});
    section.appendChild(controls);
    var state = {source: 0, layer: 0, head: "all", focus: null};
    var caption = el("p", {className: "ha-caption"});
    var body = el("div", {className: "ha-head-body"});
    section.appendChild(caption);
    section.appendChild(body);

    var sourceSel = null;
    if (sources.length > 1) {
      sourceSel = selector("Attention", sources.map(function (s, i) { return {value: i, text: s.name}; }), function (v) {
        state.source = Number(v);
        state.layer = 0;
        state.focus = null;
        fillLayerHead();
        draw();
      });
      controls.appendChild(sourceSel.wrap);
    }
    var layerSel = selector("Layer", [], function (v) { state.layer = Number(v); state.focus = null; draw(); });
    var headSel = selector("Head", [], function (v) { state.head = v; draw(); });
    layerSel.select.classList.add("ha-layer-select");
    headSel.select.classList.add("ha-head-select");
    controls.appendChild(layerSel.wrap);
    controls.appendChild(headSel.wrap);

    function fillLayerHead() {
      var att = sources[state.source].attention;
      layerSel.select.textContent = "";
      att.forEach(function (_, l) { layerSel.select.appendChild(el("option", {value: String(l), text: String(l)})); });
      headSel.select.textContent = "";
      headSel.select.appendChild(el("option", {value: "all", text: "all heads"}));
      var heads = att.length > 0 ? att[0].length : 0;
      range(heads).forEach(function (h) { headSel.select.appendChild(el("option", {value: String(h), text: String(h)})); });
      state.head = "all";
    }

    function draw() {
      var src = sources[state.source];
      body.textContent = "";
      if (src.attention.length === 0 || src.left.length === 0 || src.right.length === 0) {
        body.appendChild(el("p", {className: "ha-empty", text: "Nothing to show: no tokens."}));
        return;
      }
      var layer = src.attention[state.layer];
      var heads = state.head === "all" ? range(layer.length) : [Number(state.head)];
      var height = Math.max(src.left.length, src.right.length) * ROW;
      var width = 180;
      var left = el("div", {className: "ha-tokens ha-left", role: "list", "aria-label": src.leftName});
      var right = el("div", {className: "ha-tokens ha-right", role: "list", "aria-label": src.rightName});
      var svg = svgEl("svg", {className: "ha-lines", width: String(width), height: String(height),
                              viewBox: "0 0 " + width + " " + height, role: "img",
                              "aria-label": "attention lines, layer " + state.layer + ", " +
                                            (state.head === "all" ? "all heads" : "head " + state.head)});
      function token(text, side, index) {
        var node = el("div", {className: "ha-token", tabindex: "0", role: "listitem", "data-side": side,
                              "data-index": String(index), text: label(text), title: text});
        function on() { state.focus = {side: side, index: index}; lines(); mark(); }
        function off() { state.focus = null; lines(); mark(); }
        node.addEventListener("mouseenter", on);
        node.addEventListener("focus", on);
        node.addEventListener("mouseleave", function () { if (document.activeElement !== node) off(); });
        node.addEventListener("blur", off);
        return node;
      }
      src.left.forEach(function (t, i) { left.appendChild(token(t, "left", i)); });
      src.right.forEach(function (t, j) { right.appendChild(token(t, "right", j)); });
      function mark() {
        [left, right].forEach(function (col) {
          Array.prototype.forEach.call(col.children, function (node) {
            var f = state.focus;
            var active = f && node.getAttribute("data-side") === f.side && Number(node.getAttribute("data-index")) === f.index;
            node.classList.toggle("ha-active", Boolean(active));
          });
        });
      }
      function lines() {
        while (svg.firstChild) svg.removeChild(svg.firstChild);
        var f = state.focus;
        var drawn = 0;
        heads.forEach(function (h) {
          var m = layer[h];
          var color = HEAD_COLORS[h % HEAD_COLORS.length];
          var scale = state.head === "all" ? 1 / Math.sqrt(heads.length) : 1;
          for (var i = 0; i < m.length; i++) {
            if (f && f.side === "left" && f.index !== i) continue;
            var row = m[i];
            for (var j = 0; j < row.length; j++) {
              if (f && f.side === "right" && f.index !== j) continue;
              var w = row[j];
              if (w < MIN_LINE && !f) continue;
              if (w <= 0) continue;
              svg.appendChild(svgEl("line", {x1: "0", y1: String((i + 0.5) * ROW), x2: String(width),
                                             y2: String((j + 0.5) * ROW), stroke: color,
                                             "stroke-opacity": String(Math.min(1, w * scale)), "stroke-width": "2"}));
              drawn += 1;
            }
          }
        });
        svg.setAttribute("data-lines", String(drawn));
      }
      lines();
      var grid = el("div", {className: "ha-head-grid"}, [left, el("div", {className: "ha-svg-wrap"}, svg), right]);
      body.appendChild(grid);
      caption.textContent = src.leftName + " (left) attend to " + src.rightName + " (right). A line's opacity is " +
          "the attention weight; hover or focus a token to see only its lines (weights under " + percent(MIN_LINE) +
          " are drawn only then). Colours are heads.";
    }

    fillLayerHead();
    draw();
    return section;
  }

  // ---------------------------------------------------------------------------------------------
  // Cross-attention heatmap: summary tokens (rows) x article tokens (columns), on a canvas, with a
  // readout; arrow keys move a cursor over the cells.
  function heatmap(json, onSelection) {
    var cross = json.cross_attention;
    var rows = json.decoder_tokens, cols = json.tokens;
    var section = el("section", {className: "ha-section ha-heatmap", "aria-label": "Cross-attention heatmap"});
    section.appendChild(el("h2", {text: "Cross-attention: summary \u00d7 article"}));
    var controls = el("div", {className: "ha-controls"});
    section.appendChild(controls);
    var state = {layer: 0, head: "mean", cursor: {t: 0, j: 0}};
    var layerSel = selector("Layer", cross.map(function (_, l) { return {value: l, text: String(l)}; }),
                            function (v) { state.layer = Number(v); paint(); });
    var heads = cross.length > 0 ? cross[0].length : 0;
    var headSel = selector("Head", [{value: "mean", text: "mean over heads"}].concat(
        range(heads).map(function (h) { return {value: h, text: String(h)}; })),
        function (v) { state.head = v; paint(); });
    controls.appendChild(layerSel.wrap);
    controls.appendChild(headSel.wrap);
    var readout = el("p", {className: "ha-readout", "aria-live": "polite"});
    var canvas = el("canvas", {className: "ha-heatmap-canvas", tabindex: "0", role: "img"});
    var wrap = el("div", {className: "ha-canvas-wrap"}, canvas);
    section.appendChild(el("p", {className: "ha-caption", text:
        "Each row is a generated summary token, each column an article token; darker = more attention. " +
        "Focus the map and use the arrow keys, or point at a cell, to read a weight."}));
    section.appendChild(wrap);
    section.appendChild(readout);

    if (rows.length === 0 || cols.length === 0 || cross.length === 0) {
      wrap.textContent = "";
      wrap.appendChild(el("p", {className: "ha-empty", text: "The summary is empty: no cross-attention to show."}));
      onSelection(null);
      return section;
    }
    var cell = Math.max(4, Math.min(16, Math.floor(900 / cols.length)));
    var rowLabel = 120, colLabel = cell >= 10 ? 80 : 0;
    var rowCell = Math.max(cell, 12);
    canvas.width = rowLabel + cols.length * cell;
    canvas.height = colLabel + rows.length * rowCell;
    canvas.setAttribute("aria-label", "cross-attention heatmap, " + rows.length + " summary tokens by " +
                        cols.length + " article tokens");
    var matrix = null;

    function current() {
      var layer = cross[state.layer];
      return state.head === "mean" ? meanOverHeads(layer) : layer[Number(state.head)];
    }
    function paint() {
      matrix = current();
      var ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      var max = 0;
      matrix.forEach(function (row) { row.forEach(function (w) { if (w > max) max = w; }); });
      if (max <= 0) max = 1;
      for (var t = 0; t < rows.length; t++) {
        for (var j = 0; j < cols.length; j++) {
          var a = matrix[t][j] / max;
          ctx.fillStyle = "rgba(20, 60, 140, " + a.toFixed(3) + ")";
          ctx.fillRect(rowLabel + j * cell, colLabel + t * rowCell, cell, rowCell);
        }
      }
      ctx.fillStyle = "#1a1a1a";
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      rows.forEach(function (tok, t) {
        ctx.fillText(label(tok).slice(0, 16), rowLabel - 4, colLabel + (t + 0.5) * rowCell);
      });
      if (colLabel > 0) {
        ctx.textAlign = "left";
        cols.forEach(function (tok, j) {
          ctx.save();
          ctx.translate(rowLabel + (j + 0.5) * cell, colLabel - 4);
          ctx.rotate(-Math.PI / 2);
          ctx.fillText(label(tok).slice(0, 12), 0, 0);
          ctx.restore();
        });
      }
      var c = state.cursor;
      ctx.strokeStyle = "#d11";
      ctx.lineWidth = 2;
      ctx.strokeRect(rowLabel + c.j * cell + 1, colLabel + c.t * rowCell + 1, cell - 2, rowCell - 2);
      showReadout();
      onSelection(matrix);
    }
    function showReadout() {
      var c = state.cursor;
      readout.textContent = "Summary token " + (c.t + 1) + " \u201c" + label(rows[c.t]) + "\u201d \u2192 article token " +
          (c.j + 1) + " \u201c" + label(cols[c.j]) + "\u201d: " + fmt(matrix[c.t][c.j]);
    }
    canvas.addEventListener("keydown", function (e) {
      var c = state.cursor, moved = true;
      if (e.key === "ArrowUp") c.t = Math.max(0, c.t - 1);
      else if (e.key === "ArrowDown") c.t = Math.min(rows.length - 1, c.t + 1);
      else if (e.key === "ArrowLeft") c.j = Math.max(0, c.j - 1);
      else if (e.key === "ArrowRight") c.j = Math.min(cols.length - 1, c.j + 1);
      else if (e.key === "Home") c.j = 0;
      else if (e.key === "End") c.j = cols.length - 1;
      else moved = false;
      if (moved) { e.preventDefault(); paint(); }
    });
    canvas.addEventListener("mousemove", function (e) {
      var box = canvas.getBoundingClientRect();
      var x = (e.clientX - box.left) * canvas.width / box.width - rowLabel;
      var y = (e.clientY - box.top) * canvas.height / box.height - colLabel;
      var j = Math.floor(x / cell), t = Math.floor(y / rowCell);
      if (t >= 0 && t < rows.length && j >= 0 && j < cols.length) {
        state.cursor = {t: t, j: j};
        showReadout();
      }
    });
    paint();
    return section;
  }

  // ---------------------------------------------------------------------------------------------
  // The article with each token shaded by what it received over the summary's steps.
  function articleView(json) {
    var section = el("section", {className: "ha-section ha-article", "aria-label": "Article shading"});
    section.appendChild(el("h2", {text: "The article, shaded"}));
    var controls = el("div", {className: "ha-controls"});
    section.appendChild(controls);
    var hasCopy = Array.isArray(json.copy_attention);
    var modes = [{value: "attention", text: "attention received (heatmap's layer and head)"}];
    if (hasCopy) modes.push({value: "copy", text: "copy probability received"});
    var state = {mode: "attention", matrix: null};
    var modeSel = selector("Shade by", modes, function (v) { state.mode = v; shade(); });
    controls.appendChild(modeSel.wrap);
    var caption = el("p", {className: "ha-caption"});
    var text = el("div", {className: "ha-article-text"});
    section.appendChild(caption);
    section.appendChild(text);
    var spans = json.tokens.map(function (tok, j) {
      var span = el("span", {className: "ha-article-token", tabindex: "0", "data-index": String(j), text: String(tok)});
      text.appendChild(span);
      return span;
    });
    function received() {
      var n = json.tokens.length, out = new Array(n).fill(0);
      if (state.mode === "copy") {
        json.copy_attention.forEach(function (row, t) {
          var p = json.copy_probability[t];
          row.forEach(function (w, j) { out[j] += p * w; });
        });
      } else if (state.matrix) {
        state.matrix.forEach(function (row) { row.forEach(function (w, j) { out[j] += w; }); });
      }
      return out;
    }
    function shade() {
      var values = received();
      var max = Math.max.apply(null, values.concat([0]));
      var copy = state.mode === "copy";
      spans.forEach(function (span, j) {
        var a = max > 0 ? values[j] / max : 0;
        span.style.backgroundColor = (copy ? "rgba(242, 142, 43, " : "rgba(111, 168, 220, ") + (0.85 * a).toFixed(3) + ")";
        var what = copy ? "copy probability received" : "attention received";
        span.setAttribute("title", what + ": " + fmt(values[j]));
        span.setAttribute("aria-label", label(json.tokens[j]) + ", " + what + " " + fmt(values[j]));
      });
      caption.textContent = copy
          ? "Each article token shaded by the probability of being copied into the summary, summed over the " +
            "summary's steps (copy gate \u00d7 copy attention)."
          : "Each article token shaded by the cross-attention it received, summed over the summary's steps " +
            "(the heatmap's layer and head).";
    }
    return {section: section, update: function (matrix) { state.matrix = matrix; shade(); }};
  }

  function copyStrip(json) {
    var section = el("section", {className: "ha-section ha-copy", "aria-label": "Copy probability per step"});
    section.appendChild(el("h2", {text: "Copy probability per summary token"}));
    var list = el("div", {className: "ha-copy-list", role: "list"});
    json.decoder_tokens.forEach(function (tok, t) {
      var p = Number(json.copy_probability[t]) || 0;
      list.appendChild(el("span", {className: "ha-copy-token", tabindex: "0", role: "listitem",
                                   style: "background-color: rgba(242, 142, 43, " + (0.85 * p).toFixed(3) + ")",
                                   title: "copy probability " + fmt(p),
                                   "aria-label": label(tok) + ", copy probability " + fmt(p), text: String(tok)}));
    });
    if (json.decoder_tokens.length === 0) list.appendChild(el("p", {className: "ha-empty", text: "The summary is empty."}));
    section.appendChild(list);
    return section;
  }

  function prediction(json) {
    var section = el("section", {className: "ha-section ha-prediction", "aria-label": "Prediction"});
    section.appendChild(el("h2", {text: "Prediction"}));
    section.appendChild(el("p", {className: "ha-label"}, ["Label: ", el("strong", {text: String(json.label)})]));
    var table = el("table", {className: "ha-scores"});
    table.appendChild(el("caption", {text: "Probability of each label"}));
    table.appendChild(el("thead", null, el("tr", null, [el("th", {scope: "col", text: "Label"}),
                                                         el("th", {scope: "col", text: "Probability"})])));
    var tbody = el("tbody");
    Object.keys(json.scores).map(function (k) { return [k, Number(json.scores[k])]; })
        .sort(function (a, b) { return b[1] - a[1]; })
        .forEach(function (pair) {
          var bar = el("span", {className: "ha-bar", style: "width: " + (pair[1] * 100).toFixed(1) + "%"});
          tbody.appendChild(el("tr", null, [el("th", {scope: "row", text: pair[0]}),
                                            el("td", null, [el("span", {className: "ha-bar-track"}, bar), " " + percent(pair[1])])]));
        });
    table.appendChild(tbody);
    section.appendChild(table);
    return section;
  }

  function render(container, json) {
    if (!container || typeof container.appendChild !== "function") {
      throw new TypeError("HeedAttention.render: the first argument must be a DOM element");
    }
    if (!json || typeof json !== "object") throw new TypeError("HeedAttention.render: the attention JSON must be an object");
    var kind = requireField(json, "kind");
    var tokens = requireField(json, "tokens", "array");
    var encoder = requireField(json, "encoder_attention", "array");
    container.textContent = "";
    container.classList.add("heed-attention");
    var sources = [{name: "encoder self-attention", left: tokens, right: tokens, attention: encoder,
                    leftName: "Tokens", rightName: "tokens"}];
    if (kind === "classifier") {
      requireField(json, "label");
      requireField(json, "scores");
      container.appendChild(prediction(json));
    } else if (kind === "summarizer") {
      var decoderTokens = requireField(json, "decoder_tokens", "array");
      requireField(json, "cross_attention", "array");
      requireField(json, "copy_probability", "array");
      var summary = el("section", {className: "ha-section ha-summary", "aria-label": "Summary"});
      summary.appendChild(el("h2", {text: "Summary"}));
      summary.appendChild(el("p", {className: "ha-summary-text", text: String(json.summary_text || "")}));
      container.appendChild(summary);
      var article = articleView(json);
      container.appendChild(heatmap(json, function (matrix) { article.update(matrix); }));
      container.appendChild(article.section);
      container.appendChild(copyStrip(json));
      sources.push({name: "decoder cross-attention", left: decoderTokens, right: tokens, attention: json.cross_attention,
                    leftName: "Summary tokens", rightName: "article tokens"});
    } else {
      throw new TypeError("HeedAttention.render: unknown kind \"" + kind + "\"");
    }
    container.appendChild(headView(sources));
  }

  window.HeedAttention = {render: render};
})();

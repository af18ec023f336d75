// The report's inline script: draws the charts as SVG from the JSON embedded in the page.
// Plain ES2017 for any current browser; no network, no libraries.

export const ERROR_TRAP = String.raw`
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e));
  document.documentElement.setAttribute('data-errors', String(window.__reportErrors.length));
  var box = document.getElementById('errors');
  if (box) { box.hidden = false; box.textContent = 'Script error: ' + window.__reportErrors.join('; '); }
});`;

export const REPORT_SCRIPT = String.raw`
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('report-data').textContent);

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function ticks(min, max, count, integer) {
    if (!(max > min)) { max = min + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((max - min) / count)));
    var err = (max - min) / count / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    if (integer && step < 1) step = 1;
    var out = [];
    for (var t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  function fmt(v) {
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(4));
  }

  function frame(container, opts) {
    var W = 640, H = 360, L = 64, R = 16, T = 16, B = 48;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': opts.title, 'class': 'chart' }, container);
    var xs = opts.xRange, ys = opts.yRange;
    var sx = function (x) { return L + (x - xs[0]) / (xs[1] - xs[0] || 1) * (W - L - R); };
    var sy = function (y) { return H - B - (y - ys[0]) / (ys[1] - ys[0] || 1) * (H - T - B); };
    el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, 'class': 'plot-area' }, svg);
    ticks(xs[0], xs[1], 8, opts.integerX).forEach(function (t) {
      el('line', { x1: sx(t), x2: sx(t), y1: T, y2: H - B, 'class': 'grid' }, svg);
      el('text', { x: sx(t), y: H - B + 16, 'text-anchor': 'middle', 'class': 'tick' }, svg, fmt(t));
    });
    ticks(ys[0], ys[1], 6).forEach(function (t) {
      el('line', { x1: L, x2: W - R, y1: sy(t), y2: sy(t), 'class': 'grid' }, svg);
      el('text', { x: L - 6, y: sy(t) + 4, 'text-anchor': 'end', 'class': 'tick' }, svg, fmt(t));
    });
    if (opts.xLabel) el('text', { x: (L + W - R) / 2, y: H - 10, 'text-anchor': 'middle', 'class': 'axis-label' }, svg, opts.xLabel);
    if (opts.yLabel) el('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')', 'class': 'axis-label' }, svg, opts.yLabel);
    return { svg: svg, sx: sx, sy: sy };
  }

  function extent(values, pad) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var p = (hi - lo) * pad;
    return [lo - p, hi + p];
  }

  function legend(container, items) {
    var box = document.createElement('div');
    box.className = 'legend';
    items.forEach(function (it) {
      var s = document.createElement('span');
      s.className = 'legend-item';
      var sw = document.createElement('i');
      sw.style.background = it.color;
      s.appendChild(sw);
      s.appendChild(document.createTextNode(it.name));
      box.appendChild(s);
    });
    container.appendChild(box);
  }

  function lineChart(id, opts) {
    var container = document.getElementById(id);
    var series = opts.series.filter(function (s) { return s.points.length > 0; });
    if (series.length === 0) { container.appendChild(document.createTextNode('No data.')); return; }
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var yRange = extent(ys, 0.05);
    // Accuracies stay on their own scale: never above 1 nor below 0.
    if (opts.yClamp) yRange = [Math.max(opts.yClamp[0], yRange[0]), Math.min(opts.yClamp[1], yRange[1])];
    if (!(yRange[1] > yRange[0])) yRange = [Math.max(opts.yClamp ? opts.yClamp[0] : -Infinity, yRange[1] - 0.1), yRange[1]];
    var f = frame(container, { title: opts.title, xLabel: opts.xLabel, yLabel: opts.yLabel, xRange: extent(xs, 0), yRange: yRange, integerX: opts.integerX });
    series.forEach(function (s) {
      var d = s.points.map(function (p, i) { return (i ? 'L' : 'M') + f.sx(p[0]).toFixed(1) + ' ' + f.sy(p[1]).toFixed(1); }).join('');
      el('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.5, 'class': 'series', 'data-series': s.name }, f.svg);
      if (s.markers) s.points.forEach(function (p) {
        el('circle', { cx: f.sx(p[0]), cy: f.sy(p[1]), r: 3, fill: s.color, 'class': 'marker' }, f.svg);
      });
    });
    legend(container, series);
  }

  function scatter(id, map, names, palette) {
    var container = document.getElementById(id);
    if (!map || map.x.length === 0) { container.appendChild(document.createTextNode('No embeddings in this run.')); return; }
    var f = frame(container, { title: 'embedding map', xRange: extent(map.x, 0.03), yRange: extent(map.y, 0.03) });
    var g = el('g', { 'class': 'points' }, f.svg);
    for (var i = 0; i < map.x.length; i++) {
      var c = el('circle', { cx: f.sx(map.x[i]).toFixed(1), cy: f.sy(map.y[i]).toFixed(1), r: 2.2, fill: palette[map.labels[i]], 'class': 'point', 'data-label': map.labels[i] }, g);
      el('title', {}, c, names[map.labels[i]]);
    }
    legend(container, names.map(function (n, k) { return { name: n, color: palette[k] }; }));
  }

  lineChart('loss-chart', { title: 'loss', xLabel: 'epoch', yLabel: 'loss', series: data.lossSeries });
  // One epoch: no curve to draw, so the accuracies as labelled bars on a 0 to 100% axis.
  function barChart(id, bars) {
    var container = document.getElementById(id);
    var W = 640, L = 300, R = 70, row = 34, T = 8, H = T + row * bars.length + 28;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': 'accuracy', 'class': 'chart' }, container);
    var sx = function (v) { return L + v * (W - L - R); };
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
      el('line', { x1: sx(t), x2: sx(t), y1: T, y2: H - 24, 'class': 'grid' }, svg);
      el('text', { x: sx(t), y: H - 8, 'text-anchor': 'middle', 'class': 'tick' }, svg, Math.round(t * 100) + '%');
    });
    bars.forEach(function (b, i) {
      var y = T + i * row;
      el('text', { x: L - 8, y: y + row / 2 + 4, 'text-anchor': 'end', 'class': 'axis-label' }, svg, b.name);
      el('rect', { x: sx(0), y: y + 6, width: Math.max(0, sx(b.value) - sx(0)), height: row - 12, fill: b.color, 'class': 'bar' }, svg);
      el('text', { x: sx(b.value) + 6, y: y + row / 2 + 4, 'class': 'tick' }, svg, (100 * b.value).toFixed(1) + '%');
    });
    var note = document.createElement('p');
    note.className = 'caption';
    note.textContent = 'One epoch: the accuracies as bars (a curve needs two epochs or more).';
    container.appendChild(note);
  }

  if (data.accuracyBars && data.accuracyBars.length > 0) barChart('accuracy-chart', data.accuracyBars);
  else lineChart('accuracy-chart', { title: 'accuracy', xLabel: 'epoch', yLabel: 'accuracy', series: data.accuracySeries, yClamp: [0, 1], integerX: true });
  scatter('map-chart', data.map, data.classNames, data.palette);
  document.documentElement.setAttribute('data-rendered', 'true');
})();`;

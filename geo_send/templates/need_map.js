/* geo_send need map: decodes the compact data written by geo_send/mapping.py and draws
   the areas once, the themes (one restyle each), labels, points and a legend that follows
   the active theme. Every text reaches the page through textContent, never as HTML. */
(function (window) {
  "use strict";
  var L = window.L;
  var MISSING = "#ffffff";

  function readInt(s, state) {
    var r = 0, sh = 0, b;
    do {
      b = s.charCodeAt(state.i++) - 63;
      r += (b & 31) * Math.pow(2, sh);
      sh += 5;
    } while (b >= 32);
    return r;
  }

  function unzig(z) {
    return z % 2 ? -(z + 1) / 2 : z / 2;
  }

  function decodeArcs(s, scale) {
    var arcs = [], cur = [], x = 0, y = 0, st = { i: 0 }, n = s.length;
    while (st.i < n) {
      if (s.charCodeAt(st.i) === 44) { arcs.push(cur); cur = []; st.i++; continue; }
      x += unzig(readInt(s, st));
      y += unzig(readInt(s, st));
      cur.push([x / scale, y / scale]);
    }
    arcs.push(cur);
    return arcs;
  }

  function ringCoords(refs, arcs) {
    var out = [];
    for (var k = 0; k < refs.length; k++) {
      var r = refs[k], a = r >= 0 ? arcs[r] : arcs[~r].slice().reverse();
      for (var j = out.length ? 1 : 0; j < a.length; j++) out.push(a[j]);
    }
    out.push(out[0]);
    return out;
  }

  function decodeShapes(s, arcs) {
    var areas = [], polys = [], rings = [], ring = [], prev = 0, st = { i: 0 }, n = s.length, c, r;
    while (st.i < n) {
      c = s.charCodeAt(st.i);
      if (c === 44) { rings.push(ringCoords(ring, arcs)); ring = []; st.i++; continue; }
      if (c === 59) { polys.push(rings); rings = []; st.i++; continue; }
      if (c === 33) { areas.push(polys); polys = []; st.i++; continue; }
      r = readInt(s, st);
      prev += unzig(Math.floor(r / 2));
      ring.push(r % 2 ? ~prev : prev);
    }
    return areas;
  }

  function decodeNumbers(s, decimals) {
    var out = [], st = { i: 0 }, n = s.length, f = Math.pow(10, decimals);
    while (st.i < n) {
      if (s.charCodeAt(st.i) === 33) { out.push(null); st.i++; continue; }
      out.push(unzig(readInt(s, st)) / f);
    }
    return out;
  }

  function decodeCodes(s) {
    var out = [], st = { i: 0 };
    while (st.i < s.length) out.push(readInt(s, st));
    return out;
  }

  function decodeColumn(col) {
    if (col.type === "number") {
      var v = decodeNumbers(col.values, col.decimals);
      v.decimals = col.decimals;
      return v;
    }
    if (col.list) return col.list;
    return decodeCodes(col.codes).map(function (c) { return col.dict[c]; });
  }

  function formatNumber(v, decimals, least) {
    if (v === null || v === undefined) return "no data";
    return v.toLocaleString("en-GB", {
      minimumFractionDigits: least === undefined ? decimals : least,
      maximumFractionDigits: decimals
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function NeedMap(map, data) {
    var self = this;
    this.map = map;
    this.data = data;
    this.n = data.n;
    this.columns = {};
    for (var key in data.columns) {
      if (Object.prototype.hasOwnProperty.call(data.columns, key)) {
        this.columns[key] = decodeColumn(data.columns[key]);
      }
    }
    var arcs = decodeArcs(data.geometry.arcs, data.geometry.scale);
    var shapes = decodeShapes(data.geometry.shapes, arcs);
    var features = shapes.map(function (coords, i) {
      return { type: "Feature", id: i, properties: null,
               geometry: { type: "MultiPolygon", coordinates: coords } };
    });
    this.active = null;
    this.areas = L.geoJSON(features, {
      style: function (f) { return self.styleOf(f.id); },
      onEachFeature: function (f, layer) {
        // placed before the tooltip's own handlers, so each move uses the new placement
        layer.on("mouseover mousemove", function (e) { self.placeTooltip(e); });
        layer.bindTooltip(function (l) { return self.tooltip(l.feature.id); },
                          { sticky: true, className: "gs-tooltip", opacity: 1 });
        layer.on("mouseover", function (e) {
          e.target.setStyle({ weight: 3, color: "#000" });
          e.target.bringToFront();
        });
        layer.on("mouseout", function (e) { e.target.setStyle(self.styleOf(e.target.feature.id)); });
      }
    });
    this.legend = L.control({ position: "bottomright" });
    this.legend.onAdd = function () {
      var div = el("div", "gs-legend leaflet-bar");
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    this.legend.addTo(map);
    if (data.title) {
      var title = L.control({ position: "topleft" });
      title.onAdd = function () {
        var div = el("div", "gs-title");
        div.appendChild(el("div", "gs-title-main", data.title));
        if (data.subtitle) div.appendChild(el("div", "gs-title-sub", data.subtitle));
        return div;
      };
      title.addTo(map);
    }
    if (data.attribution && map.attributionControl) {
      var span = el("span", null, data.attribution);
      map.attributionControl.addAttribution(span.outerHTML);
    }
    map.fitBounds(data.bounds, { animate: false, paddingTopLeft: data.padding.topLeft,
                                 paddingBottomRight: data.padding.bottomRight });
    window.geoSend = this;
  }

  NeedMap.prototype.styleOf = function (i) {
    var s = this.data.style;
    var t = this.active;
    var fill = MISSING;
    if (t) {
      var c = t.classes.charAt(i);
      fill = c === " " ? MISSING : t.colors[parseInt(c, 36)];
    }
    return { fillColor: fill, fillOpacity: s.fillOpacity, color: s.color,
             weight: s.weight, opacity: 1 };
  };

  // Keep the tooltip inside the map and clear of the layer control and legend on the
  // right: open it to the left near the right edge, and shift it up or down near the
  // top and bottom edges.
  NeedMap.prototype.placeTooltip = function (e) {
    var tip = e.target.getTooltip(), size = this.map.getSize(), p = e.containerPoint;
    var el = tip.getElement();
    var w = el && el.offsetWidth ? el.offsetWidth : 390;
    var h = el && el.offsetHeight ? el.offsetHeight : 300;
    var right = size.x - this.data.padding.bottomRight[0];
    tip.options.direction = p.x + w + 20 > right && p.x - w - 20 > 0 ? "left" : "right";
    var top = p.y - h / 2, dy = 0;
    if (top < 5) dy = 5 - top;
    else if (top + h > size.y - 25) dy = Math.max(5 - top, size.y - 25 - top - h);
    tip.options.offset = [0, dy];
  };

  NeedMap.prototype.tooltip = function (i) {
    var d = this.data.tooltip, cols = this.columns;
    var box = el("div", "gs-tip");
    box.appendChild(el("div", "gs-tip-name", cols[d.name][i]));
    box.appendChild(el("div", "gs-tip-code", cols[d.code][i]));
    var table = el("table");
    d.rows.forEach(function (row) {
      var v = cols[row.value][i], text;
      if (row.kind === "text") {
        if (v === "" || v === null) return;
        text = v;
      } else if (row.kind === "rank") {
        if (v === null) return;
        text = formatNumber(v, 0) + " of " + formatNumber(row.of, 0);
        if (row.lo && cols[row.lo][i] !== null) {
          text += " (90% range " + formatNumber(cols[row.lo][i], 0) + "\u2013" +
                  formatNumber(cols[row.hi][i], 0) + ")";
        }
      } else if (row.kind === "p") {
        text = v === null ? "no data" : "p = " + formatNumber(v, cols[row.value].decimals, 2);
      } else {
        text = formatNumber(v, cols[row.value].decimals);
        if (v !== null && row.lo && cols[row.lo][i] !== null) {
          text += " (" + formatNumber(cols[row.lo][i], cols[row.lo].decimals) + "\u2013" +
                  formatNumber(cols[row.hi][i], cols[row.hi].decimals) + ")";
        }
      }
      var tr = el("tr");
      tr.appendChild(el("th", null, row.label));
      tr.appendChild(el("td", null, text));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  };

  NeedMap.prototype.showTheme = function (t) {
    var self = this;
    this.active = t;
    if (!this.map.hasLayer(this.areas)) this.areas.addTo(this.map);
    this.areas.setStyle(function (f) { return self.styleOf(f.id); });
    this.drawLegend();
  };

  NeedMap.prototype.drawLegend = function () {
    var div = this.legend.getContainer(), t = this.active;
    while (div.firstChild) div.removeChild(div.firstChild);
    function rows(items) {
      items.forEach(function (it) {
        var r = el("div", "gs-legend-row");
        var sw = el("span", "gs-swatch" + (it.shape ? " gs-swatch-" + it.shape : ""));
        if (it.color) sw.style.background = it.color;
        r.appendChild(sw);
        r.appendChild(el("span", null, it.label));
        div.appendChild(r);
      });
    }
    if (t) {
      div.appendChild(el("div", "gs-legend-title", t.title));
      rows(t.legend);
      if (t.note) div.appendChild(el("div", "gs-legend-note", t.note));
    }
    var p = this.data.points;
    if (p && this.pointsLayer && this.map.hasLayer(this.pointsLayer)) {
      div.appendChild(el("div", "gs-legend-title", p.title));
      var items = [{ shape: "point", label: p.marker_label }];
      if (p.radius_m) items.push({ shape: "circle", label: p.circle_label });
      rows(items);
    }
  };

  NeedMap.prototype.theme = function (index) {
    var self = this, t = this.data.themes[index];
    var Theme = L.Layer.extend({
      onAdd: function () { self.showTheme(t); return this; },
      onRemove: function () { return this; }
    });
    return new Theme();
  };

  NeedMap.prototype.labels = function () {
    var lab = this.data.labels, cols = this.columns, group = L.layerGroup();
    var lat = cols[lab.lat], lng = cols[lab.lng], names = cols[lab.text];
    for (var i = 0; i < this.n; i++) {
      if (lat[i] === null) continue;
      group.addLayer(L.tooltip({ permanent: true, direction: "center", className: "gs-label",
                                 interactive: false })
        .setLatLng([lat[i], lng[i]]).setContent(el("span", null, names[i])));
    }
    this.labelsLayer = group;
    return group;
  };

  NeedMap.prototype.points = function () {
    var p = this.data.points, group = L.featureGroup();
    var lat = decodeNumbers(p.lat, p.decimals), lng = decodeNumbers(p.lng, p.decimals);
    for (var i = 0; i < lat.length; i++) {
      if (p.radius_m) {
        L.circle([lat[i], lng[i]], { radius: p.radius_m, color: "#000", weight: 1.5,
                                     dashArray: "6 4", fill: false, interactive: false })
          .addTo(group);
      }
      L.circleMarker([lat[i], lng[i]], { radius: 7, color: "#000", weight: 2,
                                         fillColor: "#ffffff", fillOpacity: 1 })
        .bindTooltip(el("span", null, p.names[i]), { className: "gs-tooltip" })
        .addTo(group);
    }
    var self = this;
    group.on("add remove", function () { self.drawLegend(); });
    this.pointsLayer = group;
    return group;
  };

  window.GeoSendNeedMap = NeedMap;
})(window);

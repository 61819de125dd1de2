// moat console: live refresh. Data from the JSON endpoints is only ever
// placed with textContent, attribute setters and DOM nodes, never parsed as
// HTML (the data holds attacker-controlled text: user ids, plugin reasons).
"use strict";
(function () {
  var REFRESH_MS = 2000;
  var PREFIX = "/console/";
  var body = document.body;
  var api = body.dataset.api || "";
  if (api.indexOf(PREFIX + "api/") !== 0) {
    return; // this page does not refresh
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el && el.textContent !== value) {
      el.textContent = value;
    }
  }

  function cell(c) {
    var td = document.createElement("td");
    if (c.class) {
      td.className = c.class;
    }
    if (c.href && c.href.indexOf(PREFIX) === 0) {
      var a = document.createElement("a");
      a.setAttribute("href", c.href);
      a.textContent = c.text;
      td.appendChild(a);
    } else {
      td.textContent = c.text;
    }
    if (c.meter) {
      td.appendChild(document.createTextNode(" "));
      var m = document.createElement("meter");
      m.min = 0;
      m.max = c.meter.max;
      m.value = c.meter.value;
      td.appendChild(m);
    }
    return td;
  }

  function fillTable(t) {
    var table = document.getElementById(t.id);
    if (!table || !table.tBodies.length) {
      return;
    }
    var tbody = document.createElement("tbody");
    var rows = t.rows || [];
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      r.forEach(function (c) {
        tr.appendChild(cell(c));
      });
      tbody.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.className = "empty";
      td.colSpan = (t.head || []).length || 1;
      td.textContent = t.empty || "";
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    table.replaceChild(tbody, table.tBodies[0]);
  }

  // spark draws a sparkline into an <svg><polyline> from numbers (null
  // values are gaps drawn at zero).
  function spark(id, values) {
    var svg = document.getElementById(id);
    if (!svg) {
      return;
    }
    var line = svg.querySelector("polyline");
    var w = 240, h = 48, n = values.length;
    var top = 0;
    values.forEach(function (v) {
      if (typeof v === "number" && v > top) {
        top = v;
      }
    });
    var pts = [];
    for (var i = 0; i < n; i++) {
      var v = typeof values[i] === "number" ? values[i] : 0;
      var x = n > 1 ? (i * w) / (n - 1) : w;
      var y = top > 0 ? h - 2 - (v / top) * (h - 4) : h - 2;
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    line.setAttribute("points", pts.join(" "));
  }

  function overview(d) {
    Object.keys(d.fields || {}).forEach(function (k) {
      setText("f-" + k, String(d.fields[k]));
    });
    var s = d.series || {};
    spark("spark-rps", s.rps || []);
    spark("spark-errors", s.errors_per_sec || []);
    spark("spark-p99", s.p99 || []);
  }

  function apply(d) {
    if (body.dataset.page === "overview") {
      overview(d);
    } else {
      (d.tables || []).forEach(fillTable);
    }
    setText("updated", new Date().toLocaleTimeString());
    setText("live-error", "");
  }

  function tick() {
    fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign(PREFIX + "login");
          throw new Error("logged out");
        }
        return r.json().then(function (d) {
          if (!r.ok) {
            throw new Error(d.error || "HTTP " + r.status);
          }
          return d;
        });
      })
      .then(apply)
      .catch(function (e) {
        setText("live-error", "(refresh failed: " + e.message + ")");
      })
      .then(function () {
        window.setTimeout(tick, REFRESH_MS);
      });
  }
  tick();
})();
